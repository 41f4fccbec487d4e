// The client runtime the contract's types use: the server's violation vocabulary, JSON
// writing and exact reading, timestamp formats, guest identity, retry, the persistent queue and
// the sender. No dependency beyond the engine: UnityWebRequest inside Unity, HttpClient outside.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Threading.Tasks;
#if UNITY_2019_1_OR_NEWER
using UnityEngine;
using UnityEngine.Networking;
#else
using System.Net.Http;
#endif

namespace __NAMESPACE__
{
    /// <summary>What a broken rule does, as the server decides it (the strictest one wins).</summary>
    public enum Policy
    {
        Reject,
        Quarantine,
        Warn,
    }

    /// <summary>One broken rule: the same code, path, policy and message the server reports.</summary>
    public sealed class Violation
    {
        public readonly string Code;
        public readonly string Path;
        public readonly Policy Policy;
        public readonly string Message;

        public Violation(string code, string path, Policy policy, string message)
        {
            Code = code;
            Path = path;
            Policy = policy;
            Message = message;
        }

        public override string ToString()
        {
            return Path + ": " + Code + ": " + Message;
        }
    }

    /// <summary>Collects violations with the current JSON path, as the server's validator does.</summary>
    public sealed class Checker
    {
        public readonly List<Violation> Violations = new List<Violation>();
        private readonly List<object> segments = new List<object>();

        public void EnterKey(string key)
        {
            segments.Add(key);
        }

        public void EnterIndex(int index)
        {
            segments.Add(index);
        }

        public void Leave()
        {
            segments.RemoveAt(segments.Count - 1);
        }

        /// <summary><c>$.players[2].skill</c>; keys that are not identifiers are quoted.</summary>
        public string PathOf(string field)
        {
            var path = new StringBuilder("$");
            foreach (var segment in segments)
            {
                if (segment is int)
                {
                    path.Append('[').Append(((int)segment).ToString(CultureInfo.InvariantCulture)).Append(']');
                }
                else
                {
                    PushKey(path, (string)segment);
                }
            }
            if (field != null)
            {
                PushKey(path, field);
            }
            return path.ToString();
        }

        private static void PushKey(StringBuilder path, string key)
        {
            var plain = key.Length > 0;
            foreach (var c in key)
            {
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
                {
                    plain = false;
                }
            }
            if (plain)
            {
                path.Append('.').Append(key);
                return;
            }
            path.Append("[\"");
            foreach (var c in key)
            {
                if (c == '"') path.Append("\\\"");
                else if (c == '\\') path.Append("\\\\");
                else if (c < 0x20) path.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                else path.Append(c);
            }
            path.Append("\"]");
        }

        public void Report(string code, string field, Policy policy, string message)
        {
            Violations.Add(new Violation(code, PathOf(field), policy, message));
        }

        /// <summary>Whether the server would refuse the event (a violation with policy reject).</summary>
        public static bool Rejects(List<Violation> violations)
        {
            foreach (var v in violations)
            {
                if (v.Policy == Policy.Reject) return true;
            }
            return false;
        }
    }

    /// <summary>Checks shared by the generated validators.</summary>
    /// <summary>Event ids: a UUIDv7 (RFC 9562), 48 bits of Unix milliseconds then random bits, so
    /// ids sort by time. Events get one when they are made and keep it through retries and the
    /// queue: the server stores an event whose answer was lost once, however often it is sent.</summary>
    public static class EventIds
    {
        private static readonly System.Security.Cryptography.RandomNumberGenerator Random =
            System.Security.Cryptography.RandomNumberGenerator.Create();

        public static Guid NewV7()
        {
            var bytes = new byte[16];
            lock (Random) Random.GetBytes(bytes);
            var ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            for (var i = 5; i >= 0; i--)
            {
                bytes[i] = (byte)(ms & 0xff);
                ms >>= 8;
            }
            bytes[6] = (byte)((bytes[6] & 0x0f) | 0x70);
            bytes[8] = (byte)((bytes[8] & 0x3f) | 0x80);
            var hex = new StringBuilder(36);
            for (var i = 0; i < 16; i++)
            {
                if (i == 4 || i == 6 || i == 8 || i == 10) hex.Append('-');
                hex.Append(bytes[i].ToString("x2", CultureInfo.InvariantCulture));
            }
            // Guid's own byte order differs from the text's: parse the text.
            return Guid.ParseExact(hex.ToString(), "D");
        }
    }

    public static class Rules
    {
        /// <summary>Characters (Unicode scalar values), as every engine counts lengths.</summary>
        public static int CharLength(string text)
        {
            var n = 0;
            for (var i = 0; i < text.Length; i++)
            {
                if (!char.IsLowSurrogate(text[i]) || i == 0 || !char.IsHighSurrogate(text[i - 1])) n++;
            }
            return n;
        }

        /// <summary>A string quoted for messages, as the server quotes it.</summary>
        public static string Quote(string text)
        {
            return Json.Quote(text);
        }

        /// <summary>The value at <paramref name="scale"/>, or false after reporting out_of_range.</summary>
        public static bool CheckDecimal(Checker cx, string field, decimal value, int precision, int scale)
        {
            var text = value.ToString(CultureInfo.InvariantCulture);
            var negative = text.StartsWith("-", StringComparison.Ordinal);
            if (negative) text = text.Substring(1);
            var point = text.IndexOf('.');
            var intPart = point < 0 ? text : text.Substring(0, point);
            var fracPart = point < 0 ? "" : text.Substring(point + 1).TrimEnd('0');
            if (fracPart.Length > scale)
            {
                cx.Report("out_of_range", field, Policy.Reject, "more than " + scale + " digits after the point");
                return false;
            }
            var digits = (intPart + fracPart.PadRight(scale, '0')).TrimStart('0');
            if (digits.Length > precision)
            {
                cx.Report("out_of_range", field, Policy.Reject, "does not fit decimal(" + precision + "," + scale + ")");
                return false;
            }
            return true;
        }

        /// <summary>A finite double, or false after reporting.</summary>
        public static bool CheckDouble(Checker cx, string field, double value)
        {
            if (double.IsNaN(value) || double.IsInfinity(value))
            {
                cx.Report("wrong_type", field, Policy.Reject, "expected number, found a non-finite value");
                return false;
            }
            return true;
        }

        /// <summary>Microseconds since the epoch of a wall-clock time (its fields read as UTC).</summary>
        public static long Micros(DateTime value)
        {
            return (value.Ticks - Epoch.Ticks) / 10;
        }

        public static long Micros(DateTimeOffset value)
        {
            return (value.UtcTicks - Epoch.Ticks) / 10;
        }

        /// <summary>Microseconds since the epoch of a date's midnight.</summary>
        public static long DateMicros(DateTime value)
        {
            return Micros(value.Date);
        }

        public static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    }

    /// <summary>One piece of a <c>timestamp</c> format: a specifier or literal text.</summary>
    public struct FormatItem
    {
        /// <summary><c>Y m d H M S f</c> (<c>f</c> = <c>%.f</c>), or <c>\0</c> for a literal.</summary>
        public readonly char Spec;
        public readonly string Literal;

        private FormatItem(char spec, string literal)
        {
            Spec = spec;
            Literal = literal;
        }

        public static FormatItem Of(char spec)
        {
            return new FormatItem(spec, null);
        }

        public static FormatItem Text(string literal)
        {
            return new FormatItem('\0', literal);
        }
    }

    /// <summary>Timestamp formats: strict parsing (fixed widths, real calendar days) and writing.</summary>
    public static class Timestamps
    {
        private static int? Digits(string text, int at, int n)
        {
            if (at + n > text.Length) return null;
            var value = 0;
            for (var i = at; i < at + n; i++)
            {
                if (text[i] < '0' || text[i] > '9') return null;
                value = value * 10 + (text[i] - '0');
            }
            return value;
        }

        /// <summary>The whole text against the items: a wall-clock time (UTC kind), or null.</summary>
        public static DateTime? Parse(string text, FormatItem[] items)
        {
            int at = 0, year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0;
            long ticks = 0;
            foreach (var item in items)
            {
                if (item.Spec == '\0')
                {
                    if (string.CompareOrdinal(text, at, item.Literal, 0, item.Literal.Length) != 0 || at + item.Literal.Length > text.Length) return null;
                    at += item.Literal.Length;
                    continue;
                }
                if (item.Spec == 'f')
                {
                    if (at < text.Length && text[at] == '.')
                    {
                        var end = at + 1;
                        while (end < text.Length && text[end] >= '0' && text[end] <= '9') end++;
                        var n = end - at - 1;
                        if (n == 0 || n > 9) return null;
                        var kept = Math.Min(n, 6);
                        ticks = Digits(text, at + 1, kept).Value * (long)Math.Pow(10, 6 - kept) * 10;
                        at = end;
                    }
                    continue;
                }
                var width = item.Spec == 'Y' ? 4 : 2;
                var value = Digits(text, at, width);
                if (value == null) return null;
                at += width;
                switch (item.Spec)
                {
                    case 'Y': year = value.Value; break;
                    case 'm': month = value.Value; break;
                    case 'd': day = value.Value; break;
                    case 'H': hour = value.Value; break;
                    case 'M': minute = value.Value; break;
                    default: second = value.Value; break;
                }
            }
            if (at != text.Length || year < 1 || month < 1 || month > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)) return null;
            if (hour > 23 || minute > 59 || second > 59) return null;
            return new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(ticks);
        }

        /// <summary>RFC 3339 with <c>Z</c> or an offset, or null.</summary>
        public static DateTimeOffset? ParseRfc3339(string text)
        {
            if (text.Length < 20) return null;
            var sep = text[10];
            if (sep != 'T' && sep != 't' && sep != ' ') return null;
            string local;
            var offsetMinutes = 0;
            var last = text[text.Length - 1];
            if (last == 'Z' || last == 'z')
            {
                local = text.Substring(0, text.Length - 1);
            }
            else
            {
                var zone = text.Length - 6;
                var sign = text[zone] == '+' ? 1 : text[zone] == '-' ? -1 : 0;
                var h = Digits(text, zone + 1, 2);
                var m = Digits(text, zone + 4, 2);
                if (sign == 0 || text[zone + 3] != ':' || h == null || m == null || h > 23 || m > 59) return null;
                local = text.Substring(0, zone);
                offsetMinutes = sign * (h.Value * 60 + m.Value);
            }
            var items = new[]
            {
                FormatItem.Of('Y'), FormatItem.Text("-"), FormatItem.Of('m'), FormatItem.Text("-"), FormatItem.Of('d'),
                FormatItem.Text(sep.ToString()), FormatItem.Of('H'), FormatItem.Text(":"), FormatItem.Of('M'),
                FormatItem.Text(":"), FormatItem.Of('S'), FormatItem.Of('f'),
            };
            var wall = Parse(local, items);
            if (wall == null) return null;
            return new DateTimeOffset(DateTime.SpecifyKind(wall.Value, DateTimeKind.Unspecified), TimeSpan.FromMinutes(offsetMinutes));
        }

        /// <summary>A wall-clock time written with a contract's format (fractions: microseconds).</summary>
        public static string Format(DateTime value, FormatItem[] items)
        {
            var out_ = new StringBuilder();
            foreach (var item in items)
            {
                switch (item.Spec)
                {
                    case '\0': out_.Append(item.Literal); break;
                    case 'Y': out_.Append(value.Year.ToString("D4", CultureInfo.InvariantCulture)); break;
                    case 'm': out_.Append(value.Month.ToString("D2", CultureInfo.InvariantCulture)); break;
                    case 'd': out_.Append(value.Day.ToString("D2", CultureInfo.InvariantCulture)); break;
                    case 'H': out_.Append(value.Hour.ToString("D2", CultureInfo.InvariantCulture)); break;
                    case 'M': out_.Append(value.Minute.ToString("D2", CultureInfo.InvariantCulture)); break;
                    case 'S': out_.Append(value.Second.ToString("D2", CultureInfo.InvariantCulture)); break;
                    default: out_.Append(Fraction(value.Ticks)); break;
                }
            }
            return out_.ToString();
        }

        private static string Fraction(long ticks)
        {
            var micros = (ticks % TimeSpan.TicksPerSecond) / 10;
            if (micros == 0) return "";
            return "." + micros.ToString("D6", CultureInfo.InvariantCulture).TrimEnd('0');
        }

        /// <summary>RFC 3339 in UTC: <c>2024-02-22T03:03:02.5Z</c>.</summary>
        public static string FormatRfc3339(DateTimeOffset value)
        {
            var utc = value.UtcDateTime;
            return utc.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss", CultureInfo.InvariantCulture) + Fraction(utc.Ticks) + "Z";
        }

        /// <summary>The local wall-clock time, for a <c>timestamp</c> field of client-local time.</summary>
        public static DateTime LocalWallClock()
        {
            return DateTime.SpecifyKind(DateTime.Now, DateTimeKind.Utc);
        }
    }

    /// <summary>A JSON number with the digits it was written with.</summary>
    public sealed class JsonNumber
    {
        public readonly string Text;

        public JsonNumber(string text)
        {
            Text = text;
        }
    }

    /// <summary>A JSON object: keys in order, no duplicates.</summary>
    public sealed class JsonObject : Dictionary<string, object>
    {
        public object Get(string key)
        {
            object value;
            return TryGetValue(key, out value) ? value : Json.Absent;
        }
    }

    /// <summary>A body the contract's types cannot hold.</summary>
    public sealed class DecodeException : Exception
    {
        public DecodeException(string message) : base(message)
        {
        }
    }

    /// <summary>JSON writing (escaping quotes, backslashes and control characters) and exact parsing.</summary>
    public static class Json
    {
        /// <summary>Stands for an absent key (distinct from null).</summary>
        public static readonly object Absent = new object();

        public static string Quote(string text)
        {
            var out_ = new StringBuilder("\"");
            foreach (var c in text)
            {
                switch (c)
                {
                    case '"': out_.Append("\\\""); break;
                    case '\\': out_.Append("\\\\"); break;
                    case '\n': out_.Append("\\n"); break;
                    case '\r': out_.Append("\\r"); break;
                    case '\t': out_.Append("\\t"); break;
                    case '\b': out_.Append("\\b"); break;
                    case '\f': out_.Append("\\f"); break;
                    default:
                        if (c < 0x20) out_.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else out_.Append(c);
                        break;
                }
            }
            return out_.Append('"').ToString();
        }

        public static string Number(double value)
        {
            return value.ToString("R", CultureInfo.InvariantCulture);
        }

        public static string Number(float value)
        {
            return ((double)value).ToString("R", CultureInfo.InvariantCulture);
        }

        public static string Number(long value)
        {
            return value.ToString(CultureInfo.InvariantCulture);
        }

        public static string Bool(bool value)
        {
            return value ? "true" : "false";
        }

        /// <summary>Parses JSON: objects as <see cref="JsonObject"/>, arrays as lists, numbers as <see cref="JsonNumber"/>.</summary>
        public static object Parse(string text)
        {
            var at = 0;
            var value = ParseValue(text, ref at);
            SkipWhitespace(text, ref at);
            if (at != text.Length) throw new DecodeException("invalid JSON: trailing characters at " + at);
            return value;
        }

        private static void SkipWhitespace(string text, ref int at)
        {
            while (at < text.Length && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r')) at++;
        }

        private static object ParseValue(string text, ref int at)
        {
            SkipWhitespace(text, ref at);
            if (at >= text.Length) throw new DecodeException("invalid JSON: expected a value at " + at);
            var c = text[at];
            if (c == '{')
            {
                at++;
                var obj = new JsonObject();
                SkipWhitespace(text, ref at);
                if (at < text.Length && text[at] == '}')
                {
                    at++;
                    return obj;
                }
                while (true)
                {
                    SkipWhitespace(text, ref at);
                    if (at >= text.Length || text[at] != '"') throw new DecodeException("invalid JSON: expected a key at " + at);
                    var key = ParseString(text, ref at);
                    if (obj.ContainsKey(key)) throw new DecodeException("duplicate key " + Quote(key));
                    SkipWhitespace(text, ref at);
                    if (at >= text.Length || text[at] != ':') throw new DecodeException("invalid JSON: expected ':' at " + at);
                    at++;
                    obj[key] = ParseValue(text, ref at);
                    SkipWhitespace(text, ref at);
                    if (at < text.Length && text[at] == ',') { at++; continue; }
                    if (at < text.Length && text[at] == '}') { at++; return obj; }
                    throw new DecodeException("invalid JSON: expected ',' or '}' at " + at);
                }
            }
            if (c == '[')
            {
                at++;
                var list = new List<object>();
                SkipWhitespace(text, ref at);
                if (at < text.Length && text[at] == ']')
                {
                    at++;
                    return list;
                }
                while (true)
                {
                    list.Add(ParseValue(text, ref at));
                    SkipWhitespace(text, ref at);
                    if (at < text.Length && text[at] == ',') { at++; continue; }
                    if (at < text.Length && text[at] == ']') { at++; return list; }
                    throw new DecodeException("invalid JSON: expected ',' or ']' at " + at);
                }
            }
            if (c == '"') return ParseString(text, ref at);
            if (string.CompareOrdinal(text, at, "true", 0, 4) == 0) { at += 4; return true; }
            if (string.CompareOrdinal(text, at, "false", 0, 5) == 0) { at += 5; return false; }
            if (string.CompareOrdinal(text, at, "null", 0, 4) == 0) { at += 4; return null; }
            var start = at;
            if (at < text.Length && text[at] == '-') at++;
            var intStart = at;
            while (at < text.Length && text[at] >= '0' && text[at] <= '9') at++;
            if (at == intStart || (text[intStart] == '0' && at - intStart > 1)) throw new DecodeException("invalid JSON: expected a value at " + start);
            if (at < text.Length && text[at] == '.')
            {
                at++;
                var fracStart = at;
                while (at < text.Length && text[at] >= '0' && text[at] <= '9') at++;
                if (at == fracStart) throw new DecodeException("invalid JSON: bad number at " + start);
            }
            if (at < text.Length && (text[at] == 'e' || text[at] == 'E'))
            {
                at++;
                if (at < text.Length && (text[at] == '+' || text[at] == '-')) at++;
                var expStart = at;
                while (at < text.Length && text[at] >= '0' && text[at] <= '9') at++;
                if (at == expStart) throw new DecodeException("invalid JSON: bad number at " + start);
            }
            return new JsonNumber(text.Substring(start, at - start));
        }

        private static string ParseString(string text, ref int at)
        {
            var out_ = new StringBuilder();
            at++;
            while (true)
            {
                if (at >= text.Length) throw new DecodeException("invalid JSON: unterminated string");
                var c = text[at++];
                if (c == '"') return out_.ToString();
                if (c < 0x20) throw new DecodeException("invalid JSON: control character in a string");
                if (c != '\\')
                {
                    out_.Append(c);
                    continue;
                }
                if (at >= text.Length) throw new DecodeException("invalid JSON: unterminated string");
                var e = text[at++];
                switch (e)
                {
                    case '"': out_.Append('"'); break;
                    case '\\': out_.Append('\\'); break;
                    case '/': out_.Append('/'); break;
                    case 'b': out_.Append('\b'); break;
                    case 'f': out_.Append('\f'); break;
                    case 'n': out_.Append('\n'); break;
                    case 'r': out_.Append('\r'); break;
                    case 't': out_.Append('\t'); break;
                    case 'u':
                        int code;
                        if (at + 4 > text.Length || !int.TryParse(text.Substring(at, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out code))
                        {
                            throw new DecodeException("invalid JSON: bad \\u escape");
                        }
                        out_.Append((char)code);
                        at += 4;
                        break;
                    default:
                        throw new DecodeException("invalid JSON: bad escape");
                }
            }
        }
    }

    /// <summary>Readers from parsed JSON into the contract's types; each throws <see cref="DecodeException"/>.</summary>
    public static class Read
    {
        private static string Kind(object value)
        {
            if (value == Json.Absent) return "nothing";
            if (value == null) return "null";
            if (value is JsonNumber) return "number";
            if (value is JsonObject) return "object";
            if (value is List<object>) return "array";
            if (value is bool) return "boolean";
            return "string";
        }

        private static DecodeException Expected(string what, object value)
        {
            return new DecodeException("expected " + what + ", found " + Kind(value));
        }

        /// <summary>An object whose keys are all allowed (null: any key, the contract drops unknown ones).</summary>
        public static JsonObject Object(object value, string[] allowed)
        {
            var obj = value as JsonObject;
            if (obj == null) throw Expected("object", value);
            if (allowed != null)
            {
                foreach (var key in obj.Keys)
                {
                    if (Array.IndexOf(allowed, key) < 0) throw new DecodeException(Json.Quote(key) + " is not a field here");
                }
            }
            return obj;
        }

        public static bool Present(object value)
        {
            return value != Json.Absent && value != null;
        }

        public static object Required(object value)
        {
            if (!Present(value)) throw Expected("a value", value);
            return value;
        }

        public static string String(object value)
        {
            var s = value as string;
            if (s == null) throw Expected("string", value);
            return s;
        }

        public static bool Bool(object value)
        {
            if (!(value is bool)) throw Expected("boolean", value);
            return (bool)value;
        }

        private static string NumberText(object value)
        {
            var n = value as JsonNumber;
            if (n == null) throw Expected("number", value);
            return n.Text;
        }

        public static double Double(object value)
        {
            return double.Parse(NumberText(value), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        public static float Float(object value)
        {
            var d = Double(value);
            if (Math.Abs(d) > float.MaxValue) throw new DecodeException("does not fit a float");
            return (float)d;
        }

        public static long Long(object value)
        {
            var text = NumberText(value);
            long n;
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n)) return n;
            decimal d;
            if (decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out d) && d == decimal.Truncate(d) && d >= long.MinValue && d <= long.MaxValue)
            {
                return (long)d;
            }
            throw new DecodeException("not a long: " + text);
        }

        public static int Int(object value)
        {
            var n = Long(value);
            if (n < int.MinValue || n > int.MaxValue) throw new DecodeException("does not fit an int");
            return (int)n;
        }

        public static decimal Decimal(object value)
        {
            var text = value is string ? (string)value : NumberText(value);
            decimal d;
            if (!decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) throw new DecodeException("not a decimal a System.Decimal holds: " + text);
            return d;
        }

        public static Guid Uuid(object value)
        {
            var s = String(value);
            Guid g;
            if (s.Length != 36 || !Guid.TryParseExact(s, "D", out g)) throw new DecodeException("not a uuid");
            return g;
        }

        public static DateTime Date(object value)
        {
            var d = Timestamps.Parse(String(value), new[] { FormatItem.Of('Y'), FormatItem.Text("-"), FormatItem.Of('m'), FormatItem.Text("-"), FormatItem.Of('d') });
            if (d == null) throw new DecodeException("not a date a DateTime holds");
            return d.Value;
        }

        public static DateTime Timestamp(object value, FormatItem[] format)
        {
            var t = Timestamps.Parse(String(value), format);
            if (t == null) throw new DecodeException("not a timestamp a DateTime holds");
            return t.Value;
        }

        public static DateTimeOffset TimestampTz(object value)
        {
            var t = Timestamps.ParseRfc3339(String(value));
            if (t == null) throw new DecodeException("not a timestamp a DateTimeOffset holds");
            return t.Value;
        }

        public static List<T> List<T>(object value, Func<object, T> item)
        {
            var list = value as List<object>;
            if (list == null) throw Expected("array", value);
            var out_ = new List<T>();
            foreach (var v in list) out_.Add(item(v));
            return out_;
        }

        public static Dictionary<string, T> Map<T>(object value, Func<object, T> item)
        {
            var obj = value as JsonObject;
            if (obj == null) throw Expected("object", value);
            var out_ = new Dictionary<string, T>();
            foreach (var kv in obj) out_[kv.Key] = item(kv.Value);
            return out_;
        }
    }

    /// <summary>Writers of JSON arrays and objects from typed values.</summary>
    public static class Write
    {
        public static string List<T>(IList<T> values, Func<T, string> item)
        {
            var parts = new List<string>();
            foreach (var v in values) parts.Add(item(v));
            return "[" + string.Join(",", parts.ToArray()) + "]";
        }

        public static string Map<T>(IDictionary<string, T> values, Func<T, string> item)
        {
            var parts = new List<string>();
            foreach (var kv in values) parts.Add(Json.Quote(kv.Key) + ":" + item(kv.Value));
            return "{" + string.Join(",", parts.ToArray()) + "}";
        }
    }

    /// <summary>An event of one contract.</summary>
    public interface IContractEvent
    {
        /// <summary>The JSON body the server expects.</summary>
        string ToJson();

        /// <summary>Every violation the server would report, judged at ingest time <paramref name="nowUtc"/>.</summary>
        List<Violation> Validate(DateTime nowUtc);
    }

    /// <summary>What a generated module tells the client about its contract.</summary>
    public sealed class ContractInfo
    {
        public string Name;
        public string Version;
        public string Route;
        public string BatchRoute;
        public int MaxBatchEvents;
        public int MaxBodyBytes;
    }

    /// <summary>An event the client refused before sending: it breaks a rule the server would reject.</summary>
    public sealed class ContractViolationException : Exception
    {
        public readonly List<Violation> Violations;

        public ContractViolationException(List<Violation> violations)
            : base(string.Join("; ", violations.ConvertAll(v => v.ToString()).ToArray()))
        {
            Violations = violations;
        }
    }

    /// <summary>An HTTP answer the client does not retry (4xx), or the last one after every retry.</summary>
    public sealed class HttpException : Exception
    {
        public readonly int Status;
        public readonly string Body;

        public HttpException(int status, string body) : base("HTTP " + status + ": " + body)
        {
            Status = status;
            Body = body;
        }
    }

    /// <summary>An HTTP answer: status and body text.</summary>
    public sealed class HttpAnswer
    {
        public readonly int Status;
        public readonly string Body;

        public HttpAnswer(int status, string body)
        {
            Status = status;
            Body = body;
        }
    }

    /// <summary>How requests travel: UnityWebRequest in the engine, HttpClient outside, a fake in tests.
    /// A network failure is an exception; any HTTP answer is returned.</summary>
    public interface IHttpTransport
    {
        Task<HttpAnswer> SendAsync(string method, string url, IDictionary<string, string> headers, string contentType, string body);
    }

#if UNITY_2019_1_OR_NEWER
    /// <summary>The engine's transport.</summary>
    public sealed class UnityWebRequestTransport : IHttpTransport
    {
        public Task<HttpAnswer> SendAsync(string method, string url, IDictionary<string, string> headers, string contentType, string body)
        {
            var request = new UnityWebRequest(url, method);
            request.downloadHandler = new DownloadHandlerBuffer();
            if (body != null)
            {
                request.uploadHandler = new UploadHandlerRaw(Encoding.UTF8.GetBytes(body));
                request.SetRequestHeader("Content-Type", contentType);
            }
            foreach (var header in headers) request.SetRequestHeader(header.Key, header.Value);
            var done = new TaskCompletionSource<HttpAnswer>();
            request.SendWebRequest().completed += _ =>
            {
                if (request.responseCode == 0)
                {
                    done.SetException(new IOException(request.error ?? "network error"));
                }
                else
                {
                    done.SetResult(new HttpAnswer((int)request.responseCode, request.downloadHandler.text));
                }
                request.Dispose();
            };
            return done.Task;
        }
    }

    /// <summary>Keeps identity and queue in PlayerPrefs (WebGL builds have no file system).</summary>
    public sealed class PlayerPrefsStore : IKeyValueStore
    {
        public string Get(string key)
        {
            return PlayerPrefs.HasKey(key) ? PlayerPrefs.GetString(key) : null;
        }

        public void Set(string key, string value)
        {
            PlayerPrefs.SetString(key, value);
            PlayerPrefs.Save();
        }
    }
#else
    /// <summary>The transport outside the engine: tools, dedicated servers, tests.</summary>
    public sealed class HttpClientTransport : IHttpTransport
    {
        private static readonly HttpClient Shared = new HttpClient();
        private readonly HttpClient Client;

        /// <summary>Requests wait for their answer up to HttpClient's default (100 s).</summary>
        public HttpClientTransport()
        {
            Client = Shared;
        }

        /// <summary>A request not answered within <paramref name="timeout"/> is abandoned: a
        /// network error, retried, its events keeping their ids (the server stores each once).</summary>
        public HttpClientTransport(TimeSpan timeout)
        {
            Client = new HttpClient { Timeout = timeout };
        }

        public async Task<HttpAnswer> SendAsync(string method, string url, IDictionary<string, string> headers, string contentType, string body)
        {
            using (var request = new HttpRequestMessage(new HttpMethod(method), url))
            {
                if (body != null) request.Content = new StringContent(body, Encoding.UTF8, contentType);
                if (body != null) request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
                foreach (var header in headers) request.Headers.TryAddWithoutValidation(header.Key, header.Value);
                using (var response = await Client.SendAsync(request))
                {
                    var text = await response.Content.ReadAsStringAsync();
                    return new HttpAnswer((int)response.StatusCode, text);
                }
            }
        }
    }
#endif

    /// <summary>Where the client keeps its identity and queue.</summary>
    public interface IKeyValueStore
    {
        string Get(string key);
        void Set(string key, string value);
    }

    /// <summary>Keeps nothing across restarts.</summary>
    public sealed class MemoryStore : IKeyValueStore
    {
        private readonly Dictionary<string, string> values = new Dictionary<string, string>();

        public string Get(string key)
        {
            string value;
            return values.TryGetValue(key, out value) ? value : null;
        }

        public void Set(string key, string value)
        {
            values[key] = value;
        }
    }

    /// <summary>One JSON file, replaced atomically (write, then rename) on every change.</summary>
    public sealed class FileStore : IKeyValueStore
    {
        private readonly string path;
        private readonly Dictionary<string, string> values = new Dictionary<string, string>();

        public FileStore(string path)
        {
            this.path = path;
            if (File.Exists(path))
            {
                var obj = Read.Object(Json.Parse(File.ReadAllText(path, Encoding.UTF8)), null);
                foreach (var kv in obj) values[kv.Key] = Read.String(kv.Value);
            }
        }

        public string Get(string key)
        {
            string value;
            return values.TryGetValue(key, out value) ? value : null;
        }

        public void Set(string key, string value)
        {
            values[key] = value;
            var parts = new List<string>();
            foreach (var kv in values) parts.Add(Json.Quote(kv.Key) + ":" + Json.Quote(kv.Value));
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, "{" + string.Join(",", parts.ToArray()) + "}", new UTF8Encoding(false));
            if (File.Exists(path)) File.Replace(tmp, path, null);
            else File.Move(tmp, path);
        }
    }

    /// <summary>A token from the game's own sign-in, and when it expires if the game knows.</summary>
    public sealed class ProvidedToken
    {
        /// <summary>Sent as the <c>Authorization</c> header, as given (<c>serve</c> takes it with or without <c>Bearer </c>).</summary>
        public string Token;
        /// <summary>Asked again <c>RefreshMarginSeconds</c> before; without it, the token is used until a 401.</summary>
        public DateTimeOffset? ExpiresAt;
    }

    /// <summary>The game's sign-in: its backend's access token for the player, in place of the guest login.</summary>
    public interface ITokenProvider
    {
        /// <summary><paramref name="forceRefresh"/> is true after the server refused the last token (401):
        /// return a new token, not a cached one. An exception fails <c>SendAsync</c>; <c>SendBatchAsync</c> and
        /// <c>FlushAsync</c> retry it as a network error (a flush keeps its events queued).</summary>
        Task<ProvidedToken> GetTokenAsync(bool forceRefresh);
    }

    /// <summary>Client settings.</summary>
    public sealed class ClientOptions
    {
        /// <summary>Base of the API, ending in <c>/</c>: <c>https://host/prod/</c>.</summary>
        public string BaseUrl;
        /// <summary>Base of the identity service; default <see cref="BaseUrl"/>.</summary>
        public string LoginBaseUrl;
        public IKeyValueStore Store = new MemoryStore();
        public IHttpTransport Transport;
        /// <summary>Queue bound in events; the oldest are dropped first when full (and counted).</summary>
        public int MaxQueuedEvents = 1000;
        /// <summary>Attempts per request on network errors and 5xx (never on 4xx).</summary>
        public int MaxAttempts = 5;
        public int BaseBackoffMs = 200;
        public int MaxBackoffMs = 10000;
        public int RefreshMarginSeconds = 60;
        /// <summary>The game's own sign-in (docs/clients.md): its tokens are sent instead of a guest's,
        /// so the server's <c>player_id</c> is the game's player. Default (null): the guest login.</summary>
        public ITokenProvider TokenProvider;
        /// <summary>Extra query for <c>login-as-guest</c>, e.g. <c>scope=authenticated</c>.</summary>
        public string LoginQuery = "";
        public Func<double> Random;
        public Func<int, Task> Sleep;
        public Func<DateTime> UtcNow;
    }

    /// <summary>What a flush did: events the server answered for (<see cref="Sent"/>), by answer, and what is left queued.</summary>
    public sealed class FlushResult
    {
        public int Sent;
        public int Accepted;
        public int Quarantined;
        public int Rejected;
        /// <summary>Taken by the deployed API (API Gateway → Kinesis), which gives no verdict (Glue judges later).</summary>
        public int Added;
        public int Remaining;

        internal void Count(BatchOutcome outcome)
        {
            if (outcome == BatchOutcome.Failed) return;
            Sent++;
            if (outcome == BatchOutcome.Accepted) Accepted++;
            else if (outcome == BatchOutcome.Quarantined) Quarantined++;
            else if (outcome == BatchOutcome.Rejected) Rejected++;
            else Added++;
        }
    }

    /// <summary>
    /// What became of one event of a batch. Accepted, Quarantined, Rejected: <c>serve</c>'s verdict.
    /// Added: the deployed API put it in the stream (its verdict comes later, from the Glue job).
    /// Failed: not acknowledged after the last attempt (or not sent: an earlier request failed).
    /// </summary>
    public enum BatchOutcome
    {
        Accepted,
        Quarantined,
        Rejected,
        Added,
        Failed,
    }

    /// <summary>One event's result in a batch.</summary>
    public sealed class BatchEventResult
    {
        public BatchOutcome Outcome;
        /// <summary>Why it failed: the deployed API's error code and message, or the last failure.</summary>
        public string Error;
    }

    /// <summary>What <c>SendBatchAsync</c> did: counts by outcome, and one result per event in the order given.</summary>
    public sealed class BatchResult
    {
        /// <summary>Events the server answered for (every outcome but Failed).</summary>
        public int Sent;
        public int Accepted;
        public int Quarantined;
        public int Rejected;
        public int Added;
        public int Failed;
        public List<BatchEventResult> Results = new List<BatchEventResult>();

        internal void Add(BatchEventResult r)
        {
            Results.Add(r);
            if (r.Outcome == BatchOutcome.Failed) Failed++;
            else Sent++;
            if (r.Outcome == BatchOutcome.Accepted) Accepted++;
            else if (r.Outcome == BatchOutcome.Quarantined) Quarantined++;
            else if (r.Outcome == BatchOutcome.Rejected) Rejected++;
            else if (r.Outcome == BatchOutcome.Added) Added++;
        }
    }

    /// <summary>A batch not every event of which was acknowledged: <see cref="Result"/> says which were,
    /// <c>InnerException</c> why not (an <see cref="HttpException"/> or a network error).</summary>
    public sealed class BatchException : Exception
    {
        public readonly BatchResult Result;

        public BatchException(BatchResult result, Exception cause)
            : base(result.Failed + " of " + result.Results.Count + " events not sent: " + cause.Message, cause)
        {
            Result = result;
        }
    }

    /// <summary>Batch requests and their answers, whichever server gave them.</summary>
    public static class Batches
    {
        /// <summary>The most events one batch request carries: Kinesis <c>PutRecords</c> takes 500 records,
        /// so the deployed API's batch model refuses more (<c>serve</c> takes the contract's <c>max_batch_events</c>).</summary>
        public const int MaxEventsPerRequest = 500;

        /// <summary>The most bytes one batch request's body (the JSON array) weighs, unless a single event
        /// is larger: one <c>PutRecords</c> call takes 5 MiB, and the deployed API puts each event
        /// base64-encoded (4/3 of its size) in an envelope; API Gateway takes 10 MB per request,
        /// <c>serve</c> <c>max_body_bytes × max_batch_events</c> (at most 16 MiB).</summary>
        public const int MaxRequestBytes = 3000000;

        /// <summary>How many of <paramref name="bodies"/> (from the first) one batch request carries: at most
        /// <paramref name="maxEvents"/>, and no more than <paramref name="maxBytes"/> of JSON array (always at least one).</summary>
        public static int Length(IList<string> bodies, int maxEvents, long maxBytes)
        {
            long bytes = 1; // `[` and `]`, less the comma the first event does not need
            var n = 0;
            foreach (var body in bodies)
            {
                if (n >= maxEvents) break;
                var next = bytes + Encoding.UTF8.GetByteCount(body) + 1;
                if (n > 0 && next > maxBytes) break;
                bytes = next;
                n++;
            }
            return n;
        }

        /// <summary>
        /// One result per event of the request (<paramref name="count"/>) from <c>serve</c>'s
        /// <c>{"results": [{"index", "verdict", ...}]}</c> or the deployed API's
        /// <c>{"results": [{"index", "result": "added" | "failed", "error", "message"}]}</c>; null
        /// when the answer has no such list (a plain 5xx, a proxy's page).
        /// </summary>
        public static List<BatchEventResult> ReadResults(string body, int count)
        {
            JsonObject obj;
            try
            {
                obj = Json.Parse(body) as JsonObject;
            }
            catch (Exception)
            {
                return null;
            }
            var list = obj == null ? null : obj.Get("results") as List<object>;
            if (list == null || list.Count != count) return null;
            var read = new BatchEventResult[count];
            for (var position = 0; position < count; position++)
            {
                var entry = list[position] as JsonObject;
                if (entry == null) return null;
                var index = position;
                var n = entry.Get("index") as JsonNumber;
                if (n != null)
                {
                    int k;
                    if (!int.TryParse(n.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out k) || k < 0 || k >= count) return null;
                    index = k;
                }
                if (read[index] != null) return null;
                var verdict = entry.Get("verdict") as string;
                var result = entry.Get("result") as string;
                if (verdict == "accept") read[index] = new BatchEventResult { Outcome = BatchOutcome.Accepted };
                else if (verdict == "quarantine") read[index] = new BatchEventResult { Outcome = BatchOutcome.Quarantined };
                else if (verdict == "reject") read[index] = new BatchEventResult { Outcome = BatchOutcome.Rejected };
                else if (result == "added") read[index] = new BatchEventResult { Outcome = BatchOutcome.Added };
                else if (result == "failed")
                {
                    read[index] = new BatchEventResult { Outcome = BatchOutcome.Failed, Error = (entry.Get("error") as string) + ": " + (entry.Get("message") as string) };
                }
                else return null;
            }
            return new List<BatchEventResult>(read);
        }
    }

    /// <summary>
    /// Sends one contract's events: validates each locally (an event the server would reject is
    /// refused and never sent), signs in with the game's token provider or as a guest (keeping the identity), refreshes the token
    /// before it expires, retries network errors and 5xx with exponential backoff and jitter, and
    /// queues events in a bounded persistent queue flushed in batches.
    /// </summary>
    public sealed class ContractClient<E> where E : IContractEvent
    {
        private readonly ContractInfo contract;
        private readonly ClientOptions options;
        private readonly IHttpTransport transport;
        private readonly Func<double> random;
        private readonly Func<int, Task> sleep;
        private readonly Func<DateTime> utcNow;
        private readonly object queueLock = new object();
        /// <summary>The provider's last token, kept in memory only: the game owns it.</summary>
        private ProvidedToken provided;
        /// <summary>Set by a 401: the provider is asked for a new token, not its cached one.</summary>
        private bool forceRefresh;

        public ContractClient(ContractInfo contract, ClientOptions options)
        {
            this.contract = contract;
            this.options = options;
#if UNITY_2019_1_OR_NEWER
            transport = options.Transport ?? new UnityWebRequestTransport();
#else
            transport = options.Transport ?? new HttpClientTransport();
#endif
            var rng = new System.Random();
            random = options.Random ?? (() => rng.NextDouble());
            sleep = options.Sleep ?? (ms => Task.Delay(ms));
            utcNow = options.UtcNow ?? (() => DateTime.UtcNow);
        }

        private string Key(string name)
        {
            return "contractc." + contract.Name + "." + name;
        }

        /// <summary>The guest's user id once logged in, else null.</summary>
        public string UserId
        {
            get
            {
                var saved = options.Store.Get(Key("identity"));
                return saved == null ? null : Read.String(Read.Object(Json.Parse(saved), null).Get("user_id"));
            }
        }

        public int Queued
        {
            get { lock (queueLock) { return LoadQueue().Items.Count; } }
        }

        public int Dropped
        {
            get { lock (queueLock) { return LoadQueue().Dropped; } }
        }

        /// <summary>Validates locally; throws <see cref="ContractViolationException"/> on a rejection.</summary>
        public List<Violation> Check(E e)
        {
            var violations = e.Validate(utcNow());
            if (Checker.Rejects(violations)) throw new ContractViolationException(violations);
            return violations;
        }

        /// <summary>Sends one event now; throws <see cref="HttpException"/> on a 4xx or after the last retry.</summary>
        public Task<HttpAnswer> SendAsync(E e)
        {
            Check(e);
            return PostAsync(contract.Route, "application/json", e.ToJson());
        }

        /// <summary>
        /// Sends events now to the batch route: JSON arrays of at most <c>MaxBatchEvents</c> (and 500)
        /// events and 3 MB per request. Events the server did not acknowledge (a network error, a 5xx, or a
        /// record the deployed API failed) are sent again, alone, with backoff; an acknowledged one
        /// never is. Throws <see cref="BatchException"/> (its <c>Result</c> says what became of each
        /// event) when some event was still not acknowledged after the last attempt or on a 4xx.
        /// </summary>
        public Task<BatchResult> SendBatchAsync(IList<E> events)
        {
            var bodies = new List<string>();
            foreach (var e in events)
            {
                Check(e);
                bodies.Add(e.ToJson());
            }
            return SendBodiesAsync(BatchRoute(), bodies);
        }

        private async Task<BatchResult> SendBodiesAsync(string route, List<string> bodies)
        {
            var result = new BatchResult();
            Exception failure = null;
            for (var start = 0; start < bodies.Count; )
            {
                var chunk = bodies.GetRange(start, BatchLength(bodies.GetRange(start, bodies.Count - start)));
                start += chunk.Count;
                if (failure != null)
                {
                    for (var i = 0; i < chunk.Count; i++) result.Add(new BatchEventResult { Outcome = BatchOutcome.Failed, Error = "not sent" });
                    continue;
                }
                var delivery = await DeliverAsync(route, chunk, done => { });
                foreach (var r in delivery.Results) result.Add(r);
                failure = delivery.Failure;
            }
            if (failure != null) throw new BatchException(result, failure);
            return result;
        }

        /// <summary>Validates and queues an event (persisted at once); <see cref="FlushAsync"/> sends the queue.</summary>
        public void Enqueue(E e)
        {
            Check(e);
            lock (queueLock)
            {
                var queue = LoadQueue();
                queue.Items.Add(new KeyValuePair<long, string>(queue.Next, e.ToJson()));
                queue.Next++;
                while (queue.Items.Count > options.MaxQueuedEvents)
                {
                    queue.Items.RemoveAt(0);
                    queue.Dropped++;
                }
                SaveQueue(queue);
            }
        }

        /// <summary>
        /// Sends the queue in batches. Events leave the queue once the server answered for them; on
        /// a network error or 5xx after the last retry they stay for the next flush.
        /// </summary>
        public async Task<FlushResult> FlushAsync()
        {
            var result = new FlushResult();
            var route = BatchRoute();
            while (true)
            {
                List<KeyValuePair<long, string>> batch;
                lock (queueLock)
                {
                    var queue = LoadQueue();
                    batch = queue.Items.GetRange(0, Math.Min(Batches.MaxEventsPerRequest, queue.Items.Count));
                }
                batch = batch.GetRange(0, BatchLength(batch.ConvertAll(i => i.Value)));
                if (batch.Count == 0) break;
                // Acknowledged events leave the queue as soon as their answer is in, before any retry
                // of the others: a crash in between never sends them twice.
                var delivery = await DeliverAsync(route, batch.ConvertAll(i => i.Value), done =>
                {
                    lock (queueLock)
                    {
                        var queue = LoadQueue();
                        var ids = new HashSet<long>(done.ConvertAll(k => batch[k].Key));
                        queue.Items.RemoveAll(i => ids.Contains(i.Key));
                        SaveQueue(queue);
                    }
                });
                foreach (var r in delivery.Results) result.Count(r.Outcome);
                if (delivery.Failure != null) throw delivery.Failure;
            }
            result.Remaining = Queued;
            return result;
        }

        /// <summary>Flushes before quitting (call from <c>OnApplicationQuit</c>; the queue survives anyway).</summary>
        public Task<FlushResult> CloseAsync()
        {
            return FlushAsync();
        }

        private string BatchRoute()
        {
            if (contract.BatchRoute == null) throw new InvalidOperationException("contract " + contract.Name + " has no batch route");
            return contract.BatchRoute;
        }

        /// <summary>How many of <paramref name="bodies"/> the next batch request carries: within the contract's limits and the deployed API's.</summary>
        private int BatchLength(IList<string> bodies)
        {
            var events = Math.Max(1, Math.Min(contract.MaxBatchEvents, Batches.MaxEventsPerRequest));
            var bytes = Math.Min(Batches.MaxRequestBytes, (long)Math.Max(1, contract.MaxBodyBytes) * events);
            return Batches.Length(bodies, events, bytes);
        }

        private sealed class Delivery
        {
            public BatchEventResult[] Results;
            public Exception Failure;
        }

        /// <summary>
        /// Sends <paramref name="bodies"/> (encoded events, at most <see cref="BatchLength"/>) as one JSON
        /// array, then what is not acknowledged yet, until every event is or the attempts run out: a
        /// network error or a 5xx without per-event results is retried whole, the events of a failed
        /// record alone, with the backoff of <c>WithRetryAsync</c>; a 4xx stops (a 401 first
        /// re-authenticates once). <paramref name="acknowledged"/> gets the indexes of each answer's
        /// acknowledged events as it comes in. Never throws: <c>Failure</c> is the last failure when
        /// some event was not acknowledged, else null.
        /// </summary>
        private async Task<Delivery> DeliverAsync(string route, List<string> bodies, Action<List<int>> acknowledged)
        {
            var results = new BatchEventResult[bodies.Count];
            var pending = new List<int>();
            for (var i = 0; i < bodies.Count; i++)
            {
                results[i] = new BatchEventResult { Outcome = BatchOutcome.Failed };
                pending.Add(i);
            }
            var reauthenticated = false;
            Exception failure = null;
            for (var attempt = 1; ; attempt++)
            {
                HttpAnswer answer = null;
                try
                {
                    var token = await TokenAsync();
                    var array = "[" + string.Join(",", pending.ConvertAll(i => bodies[i]).ToArray()) + "]";
                    answer = await transport.SendAsync("POST", Url(options.BaseUrl, route), Headers(token), "application/json", array);
                }
                catch (HttpException error)
                {
                    // A refused login (retried already): another try would be refused too.
                    failure = error;
                    break;
                }
                catch (Exception error)
                {
                    failure = error;
                }
                if (answer != null)
                {
                    if (answer.Status == 401 && !reauthenticated)
                    {
                        reauthenticated = true;
                        ForgetToken();
                        attempt--;
                        continue;
                    }
                    if (answer.Status != 200 && answer.Status < 500)
                    {
                        failure = new HttpException(answer.Status, answer.Body);
                        break;
                    }
                    // A 200 without readable results acknowledged the whole request.
                    var read = Batches.ReadResults(answer.Body, pending.Count);
                    if (read == null && answer.Status == 200) read = pending.ConvertAll(i => new BatchEventResult { Outcome = BatchOutcome.Added });
                    if (read == null)
                    {
                        failure = new HttpException(answer.Status, answer.Body);
                    }
                    else
                    {
                        var done = new List<int>();
                        var still = new List<int>();
                        for (var k = 0; k < read.Count; k++)
                        {
                            results[pending[k]] = read[k];
                            (read[k].Outcome == BatchOutcome.Failed ? still : done).Add(pending[k]);
                        }
                        if (done.Count > 0) acknowledged(done);
                        pending = still;
                        if (still.Count > 0) failure = new HttpException(answer.Status, answer.Body);
                    }
                }
                if (pending.Count == 0) return new Delivery { Results = results, Failure = null };
                if (attempt >= options.MaxAttempts) break;
                await sleep(BackoffMs(attempt));
            }
            foreach (var i in pending)
            {
                if (results[i].Error == null) results[i].Error = failure.Message;
            }
            return new Delivery { Results = results, Failure = failure };
        }

        /// <summary>The wait before attempt <paramref name="attempt"/> + 1: full jitter under a doubling ceiling.</summary>
        private int BackoffMs(int attempt)
        {
            var ceiling = Math.Min(options.MaxBackoffMs, options.BaseBackoffMs * Math.Pow(2, attempt - 1));
            return (int)Math.Floor(random() * ceiling);
        }

        private sealed class Queue
        {
            public long Next;
            public int Dropped;
            public List<KeyValuePair<long, string>> Items = new List<KeyValuePair<long, string>>();
        }

        private Queue LoadQueue()
        {
            var queue = new Queue();
            var saved = options.Store.Get(Key("queue"));
            if (saved == null) return queue;
            var obj = Read.Object(Json.Parse(saved), null);
            queue.Next = Read.Long(obj.Get("next"));
            queue.Dropped = (int)Read.Long(obj.Get("dropped"));
            foreach (var item in Read.List(obj.Get("items"), v => v))
            {
                var entry = Read.Object(item, null);
                queue.Items.Add(new KeyValuePair<long, string>(Read.Long(entry.Get("id")), Read.String(entry.Get("body"))));
            }
            return queue;
        }

        private void SaveQueue(Queue queue)
        {
            var items = queue.Items.ConvertAll(i => "{\"id\":" + i.Key + ",\"body\":" + Json.Quote(i.Value) + "}");
            options.Store.Set(Key("queue"), "{\"next\":" + queue.Next + ",\"dropped\":" + queue.Dropped + ",\"items\":[" + string.Join(",", items.ToArray()) + "]}");
        }

        private string Url(string baseUrl, string path)
        {
            return new Uri(new Uri(baseUrl), path).ToString();
        }

        private Dictionary<string, string> Headers(string token)
        {
            var headers = new Dictionary<string, string>();
            headers["X-Contract-Version"] = contract.Version;
            if (token != null) headers["Authorization"] = token;
            return headers;
        }

        /// <summary>One request with retries on network errors and 5xx; a 401 once re-authenticates.</summary>
        private async Task<HttpAnswer> PostAsync(string route, string contentType, string body)
        {
            var reauthenticated = false;
            while (true)
            {
                var token = await TokenAsync();
                var answer = await WithRetryAsync("POST", Url(options.BaseUrl, route), Headers(token), contentType, body);
                if (answer.Status == 401 && !reauthenticated)
                {
                    reauthenticated = true;
                    ForgetToken();
                    continue;
                }
                if (answer.Status != 200) throw new HttpException(answer.Status, answer.Body);
                return answer;
            }
        }

        private async Task<HttpAnswer> WithRetryAsync(string method, string url, Dictionary<string, string> headers, string contentType, string body)
        {
            for (var attempt = 1; ; attempt++)
            {
                Exception failure;
                try
                {
                    var answer = await transport.SendAsync(method, url, headers, contentType, body);
                    if (answer.Status < 500) return answer;
                    failure = new HttpException(answer.Status, answer.Body);
                }
                catch (HttpException)
                {
                    throw;
                }
                catch (Exception error)
                {
                    failure = error;
                }
                if (attempt >= options.MaxAttempts) throw failure;
                await sleep(BackoffMs(attempt));
            }
        }

        private long NowMs()
        {
            return (utcNow().Ticks - Rules.Epoch.Ticks) / TimeSpan.TicksPerMillisecond;
        }

        /// <summary>After a 401: the next request gets a fresh token (the provider forced, or a guest login).</summary>
        private void ForgetToken()
        {
            provided = null;
            forceRefresh = true;
            if (options.TokenProvider == null) options.Store.Set(Key("tokens"), "null");
        }

        /// <summary>The provider's token while it is not within the refresh margin of its expiry, else a new one.</summary>
        private async Task<string> ProvidedTokenAsync(ITokenProvider provider)
        {
            var held = provided;
            var margin = TimeSpan.FromSeconds(options.RefreshMarginSeconds);
            var now = new DateTimeOffset(DateTime.SpecifyKind(utcNow(), DateTimeKind.Utc));
            if (held != null && (held.ExpiresAt == null || held.ExpiresAt.Value - margin > now)) return held.Token;
            var given = await provider.GetTokenAsync(forceRefresh);
            if (given == null || string.IsNullOrEmpty(given.Token)) throw new InvalidOperationException("the token provider gave no token");
            // Cleared only once a token came: a provider that failed is forced again next time.
            forceRefresh = false;
            provided = new ProvidedToken { Token = given.Token, ExpiresAt = given.ExpiresAt };
            return given.Token;
        }

        /// <summary>A token valid for at least the refresh margin: the game's, or the saved one, a refreshed one, or a login.</summary>
        private async Task<string> TokenAsync()
        {
            if (options.TokenProvider != null) return await ProvidedTokenAsync(options.TokenProvider);
            var margin = options.RefreshMarginSeconds * 1000L;
            var now = NowMs();
            var saved = options.Store.Get(Key("tokens"));
            if (saved != null && saved != "null")
            {
                var tokens = Read.Object(Json.Parse(saved), null);
                if (Read.Long(tokens.Get("auth_expires_at")) - margin > now) return Read.String(tokens.Get("auth_token"));
                if (Read.Long(tokens.Get("refresh_expires_at")) - margin > now)
                {
                    var refreshed = await RefreshAsync(Read.String(tokens.Get("refresh_token")), Read.Long(tokens.Get("refresh_expires_at")));
                    if (refreshed != null) return refreshed;
                }
            }
            return await LoginAsync();
        }

        private async Task<string> RefreshAsync(string refreshToken, long refreshExpiresAt)
        {
            var url = Url(options.LoginBaseUrl ?? options.BaseUrl, "refresh-access-token") + "?refresh_token=" + Uri.EscapeDataString(refreshToken);
            try
            {
                var answer = await WithRetryAsync("GET", url, Headers(null), null, null);
                if (answer.Status != 200) return null;
                return AcceptTokens(answer.Body, refreshToken, refreshExpiresAt);
            }
            catch (Exception)
            {
                return null;
            }
        }

        /// <summary>Logs in as a guest: the saved guest if there is one, else a new guest whose identity is kept.</summary>
        public async Task<string> LoginAsync()
        {
            var query = new List<string>();
            if (!string.IsNullOrEmpty(options.LoginQuery)) query.Add(options.LoginQuery);
            var saved = options.Store.Get(Key("identity"));
            if (saved != null)
            {
                var identity = Read.Object(Json.Parse(saved), null);
                query.Add("user_id=" + Uri.EscapeDataString(Read.String(identity.Get("user_id"))));
                query.Add("guest_secret=" + Uri.EscapeDataString(Read.String(identity.Get("guest_secret"))));
            }
            var url = Url(options.LoginBaseUrl ?? options.BaseUrl, "login-as-guest") + (query.Count == 0 ? "" : "?" + string.Join("&", query.ToArray()));
            var answer = await WithRetryAsync("GET", url, Headers(null), null, null);
            if (answer.Status != 200) throw new HttpException(answer.Status, answer.Body);
            var body = Read.Object(Json.Parse(answer.Body), null);
            var user = body.Get("user_id") as string;
            var secret = body.Get("guest_secret") as string;
            if (user != null && secret != null)
            {
                options.Store.Set(Key("identity"), "{\"user_id\":" + Json.Quote(user) + ",\"guest_secret\":" + Json.Quote(secret) + "}");
            }
            return AcceptTokens(answer.Body, null, 0);
        }

        private string AcceptTokens(string text, string previousRefresh, long previousRefreshExpiresAt)
        {
            var body = Read.Object(Json.Parse(text), null);
            var token = body.Get("auth_token") as string;
            if (token == null) throw new HttpException(200, text);
            var now = NowMs();
            var refresh = body.Get("refresh_token") as string ?? previousRefresh ?? "";
            var authIn = body.Get("auth_token_expires_in") is JsonNumber ? Read.Long(body.Get("auth_token_expires_in")) : 900;
            var refreshAt = body.Get("refresh_token_expires_in") is JsonNumber
                ? now + Read.Long(body.Get("refresh_token_expires_in")) * 1000
                : previousRefreshExpiresAt;
            options.Store.Set(Key("tokens"), "{\"auth_token\":" + Json.Quote(token) + ",\"refresh_token\":" + Json.Quote(refresh)
                + ",\"auth_expires_at\":" + (now + authIn * 1000) + ",\"refresh_expires_at\":" + refreshAt + "}");
            return token;
        }
    }
}

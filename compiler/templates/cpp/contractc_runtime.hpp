// The engine-free C++17 core every contract's types use: the server's violation vocabulary,
// JSON writing (escaped) and exact reading, timestamp formats, guest identity, retry with
// backoff and jitter, the bounded persistent queue and the sender. The transport is an
// interface: libcurl for tools and tests (contractc_curl.hpp), FHttpModule in Unreal.
#pragma once

#include <algorithm>
#include <exception>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace __NAMESPACE__ {
namespace rt {

enum class Policy { Reject, Quarantine, Warn };

inline const char* policy_name(Policy p) {
    switch (p) {
        case Policy::Reject: return "reject";
        case Policy::Quarantine: return "quarantine";
        case Policy::Warn: return "warn";
    }
    return "reject";
}

/// One broken rule: the same code, path, policy and message the server reports.
struct Violation {
    std::string code;
    std::string path;
    Policy policy;
    std::string message;
};

inline bool rejects(const std::vector<Violation>& violations) {
    return std::any_of(violations.begin(), violations.end(),
                       [](const Violation& v) { return v.policy == Policy::Reject; });
}

/// Collects violations with the current JSON path, as the server's validator does.
class Checker {
public:
    std::vector<Violation> violations;

    void enter_key(const std::string& key) { segments_.push_back({key, -1}); }
    void enter_index(std::size_t index) { segments_.push_back({"", static_cast<long long>(index)}); }
    void leave() { segments_.pop_back(); }

    std::string path_of(const char* field) const {
        std::string path = "$";
        for (const auto& s : segments_) {
            if (s.second >= 0) {
                path += "[" + std::to_string(s.second) + "]";
            } else {
                push_key(path, s.first);
            }
        }
        if (field != nullptr) push_key(path, field);
        return path;
    }

    void report(const char* code, const char* field, Policy policy, std::string message) {
        violations.push_back(Violation{code, path_of(field), policy, std::move(message)});
    }

private:
    std::vector<std::pair<std::string, long long>> segments_;

    static void push_key(std::string& path, const std::string& key) {
        bool plain = !key.empty();
        for (unsigned char c : key) {
            if (!(std::isalnum(c) || c == '_') || c >= 0x80) plain = false;
        }
        if (plain) {
            path += "." + key;
            return;
        }
        path += "[\"";
        for (unsigned char c : key) {
            if (c == '"') path += "\\\"";
            else if (c == '\\') path += "\\\\";
            else if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                path += buf;
            } else path += static_cast<char>(c);
        }
        path += "\"]";
    }
};

/// Characters (Unicode scalar values) of UTF-8 text, as every engine counts lengths.
inline std::size_t char_length(const std::string& text) {
    std::size_t n = 0;
    for (unsigned char c : text) {
        if ((c & 0xC0) != 0x80) ++n;
    }
    return n;
}

// ----- JSON ------------------------------------------------------------------------------------

/// A JSON string literal: quotes, backslashes and control characters escaped; UTF-8 kept.
inline std::string quote(const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

/// The shortest text that reads back as the same double.
inline std::string number(double value) {
    char buf[40];
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, value);
        if (std::strtod(buf, nullptr) == value) break;
    }
    return buf;
}

inline std::string number(float value) {
    char buf[40];
    for (int precision = 1; precision <= 9; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(value));
        if (std::strtof(buf, nullptr) == value) break;
    }
    return buf;
}

inline std::string number(std::int64_t value) { return std::to_string(value); }
inline std::string number(std::int32_t value) { return std::to_string(value); }
inline std::string boolean(bool value) { return value ? "true" : "false"; }

/// A body the contract's types cannot hold.
struct DecodeError : std::runtime_error {
    explicit DecodeError(const std::string& what) : std::runtime_error(what) {}
};

/// A parsed JSON value: numbers keep their text, objects their order (no duplicate keys).
struct Json {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool flag = false;
    std::string text;
    std::vector<Json> items;
    std::vector<std::pair<std::string, Json>> members;

    const Json* get(const std::string& key) const {
        for (const auto& m : members) {
            if (m.first == key) return &m.second;
        }
        return nullptr;
    }
};

class Parser {
public:
    explicit Parser(const std::string& text) : text_(text) {}

    Json parse() {
        Json value = parse_value();
        skip();
        if (at_ != text_.size()) fail("trailing characters");
        return value;
    }

private:
    const std::string& text_;
    std::size_t at_ = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw DecodeError("invalid JSON at " + std::to_string(at_) + ": " + what);
    }
    void skip() {
        while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r')) ++at_;
    }
    bool word(const char* w) {
        std::size_t n = std::char_traits<char>::length(w);
        if (text_.compare(at_, n, w) == 0) {
            at_ += n;
            return true;
        }
        return false;
    }
    static void utf8(std::string& out, unsigned long cp) {
        if (cp < 0x80) out += static_cast<char>(cp);
        else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    unsigned long hex4() {
        if (at_ + 4 > text_.size()) fail("bad \\u escape");
        unsigned long v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = text_[at_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned long>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned long>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned long>(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string parse_string() {
        std::string out;
        ++at_;
        for (;;) {
            if (at_ >= text_.size()) fail("unterminated string");
            unsigned char c = static_cast<unsigned char>(text_[at_++]);
            if (c == '"') return out;
            if (c < 0x20) fail("control character in a string");
            if (c != '\\') {
                out += static_cast<char>(c);
                continue;
            }
            if (at_ >= text_.size()) fail("unterminated string");
            char e = text_[at_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned long cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && text_.compare(at_, 2, "\\u") == 0) {
                        at_ += 2;
                        unsigned long low = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }
    Json parse_value() {
        skip();
        if (at_ >= text_.size()) fail("expected a value");
        Json v;
        char c = text_[at_];
        if (c == '{') {
            ++at_;
            v.kind = Json::Kind::Object;
            skip();
            if (at_ < text_.size() && text_[at_] == '}') {
                ++at_;
                return v;
            }
            for (;;) {
                skip();
                if (at_ >= text_.size() || text_[at_] != '"') fail("expected a key");
                std::string key = parse_string();
                if (v.get(key) != nullptr) throw DecodeError("duplicate key " + quote(key));
                skip();
                if (at_ >= text_.size() || text_[at_] != ':') fail("expected ':'");
                ++at_;
                Json member = parse_value();
                v.members.emplace_back(std::move(key), std::move(member));
                skip();
                if (at_ < text_.size() && text_[at_] == ',') { ++at_; continue; }
                if (at_ < text_.size() && text_[at_] == '}') { ++at_; return v; }
                fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            ++at_;
            v.kind = Json::Kind::Array;
            skip();
            if (at_ < text_.size() && text_[at_] == ']') {
                ++at_;
                return v;
            }
            for (;;) {
                v.items.push_back(parse_value());
                skip();
                if (at_ < text_.size() && text_[at_] == ',') { ++at_; continue; }
                if (at_ < text_.size() && text_[at_] == ']') { ++at_; return v; }
                fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.kind = Json::Kind::String;
            v.text = parse_string();
            return v;
        }
        if (word("true")) { v.kind = Json::Kind::Bool; v.flag = true; return v; }
        if (word("false")) { v.kind = Json::Kind::Bool; return v; }
        if (word("null")) return v;
        static const std::regex number_re("^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");
        std::smatch m;
        std::string rest = text_.substr(at_, 400);
        if (!std::regex_search(rest, m, number_re)) fail("expected a value");
        v.kind = Json::Kind::Number;
        v.text = m.str(0);
        at_ += v.text.size();
        return v;
    }
};

inline Json parse_json(const std::string& text) { return Parser(text).parse(); }

// ----- decimals, dates, timestamps, uuids ------------------------------------------------------

/// A `timestamp` (no zone): microseconds since the epoch of a wall-clock time read as UTC.
struct Timestamp {
    std::int64_t micros = 0;
};

/// A `timestamptz`: microseconds since the epoch, UTC.
struct TimestampTz {
    std::int64_t micros = 0;
};

inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

inline void civil_from_days(std::int64_t z, int& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
    m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
    y = static_cast<int>(yoe + era * 400 + (m <= 2));
}

/// A wall-clock time from its fields (e.g. a game's local clock).
inline Timestamp make_timestamp(int year, unsigned month, unsigned day, unsigned hour = 0, unsigned minute = 0,
                                unsigned second = 0, unsigned micros = 0) {
    const std::int64_t days = days_from_civil(year, month, day);
    return Timestamp{((days * 86400 + hour * 3600 + minute * 60 + second) * 1000000) + micros};
}

/// Now, UTC.
inline TimestampTz now_utc() {
    using namespace std::chrono;
    return TimestampTz{duration_cast<microseconds>(system_clock::now().time_since_epoch()).count()};
}

/// The local wall-clock time, as the reference client sends `updated_at`.
inline Timestamp local_wall_clock() {
    std::time_t t = std::time(nullptr);
    std::tm local{};
    localtime_r(&t, &local);
    return make_timestamp(local.tm_year + 1900, static_cast<unsigned>(local.tm_mon + 1), static_cast<unsigned>(local.tm_mday),
                          static_cast<unsigned>(local.tm_hour), static_cast<unsigned>(local.tm_min),
                          static_cast<unsigned>(local.tm_sec));
}

/// One piece of a `timestamp` format: `Y m d H M S f` (f = `%.f`) or 0 with literal text.
struct FormatItem {
    char spec;
    const char* literal;
};

inline bool digits_at(const std::string& s, std::size_t at, std::size_t n, unsigned& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + static_cast<unsigned>(s[i] - '0');
    }
    return true;
}

/// Strict parse (fixed widths, real calendar days, no second 60): microseconds, or nothing.
inline std::optional<std::int64_t> parse_timestamp(const std::string& text, const std::vector<FormatItem>& items) {
    std::size_t at = 0;
    unsigned year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0, micros = 0;
    for (const auto& item : items) {
        if (item.spec == 0) {
            std::string lit = item.literal;
            if (text.compare(at, lit.size(), lit) != 0) return std::nullopt;
            at += lit.size();
            continue;
        }
        if (item.spec == 'f') {
            if (at < text.size() && text[at] == '.') {
                std::size_t end = at + 1;
                while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
                std::size_t n = end - at - 1;
                if (n == 0 || n > 9) return std::nullopt;
                std::size_t kept = std::min<std::size_t>(n, 6);
                unsigned v = 0;
                digits_at(text, at + 1, kept, v);
                for (std::size_t i = kept; i < 6; ++i) v *= 10;
                micros = v;
                at = end;
            }
            continue;
        }
        std::size_t width = item.spec == 'Y' ? 4 : 2;
        unsigned v = 0;
        if (!digits_at(text, at, width, v)) return std::nullopt;
        at += width;
        switch (item.spec) {
            case 'Y': year = v; break;
            case 'm': month = v; break;
            case 'd': day = v; break;
            case 'H': hour = v; break;
            case 'M': minute = v; break;
            default: second = v; break;
        }
    }
    static const unsigned days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (at != text.size() || month < 1 || month > 12 || day < 1) return std::nullopt;
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > days_in[month - 1] + ((month == 2 && leap) ? 1 : 0)) return std::nullopt;
    if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
    return make_timestamp(static_cast<int>(year), month, day, hour, minute, second, micros).micros;
}

inline std::optional<std::int64_t> parse_rfc3339(const std::string& text) {
    if (text.size() < 20) return std::nullopt;
    const char sep = text[10];
    if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
    std::string local;
    std::int64_t offset = 0;
    const char last = text.back();
    if (last == 'Z' || last == 'z') {
        local = text.substr(0, text.size() - 1);
    } else {
        const std::size_t zone = text.size() - 6;
        const int sign = text[zone] == '+' ? 1 : text[zone] == '-' ? -1 : 0;
        unsigned h = 0, m = 0;
        if (sign == 0 || text[zone + 3] != ':' || !digits_at(text, zone + 1, 2, h) || !digits_at(text, zone + 4, 2, m) ||
            h > 23 || m > 59) {
            return std::nullopt;
        }
        local = text.substr(0, zone);
        offset = sign * static_cast<std::int64_t>(h * 3600 + m * 60);
    }
    const char sep_text[2] = {sep, 0};
    const std::vector<FormatItem> items = {{'Y', nullptr}, {0, "-"}, {'m', nullptr}, {0, "-"},      {'d', nullptr},
                                           {0, sep_text},  {'H', nullptr}, {0, ":"}, {'M', nullptr}, {0, ":"},
                                           {'S', nullptr}, {'f', nullptr}};
    auto micros = parse_timestamp(local, items);
    if (!micros) return std::nullopt;
    return *micros - offset * 1000000;
}

inline std::string fraction(std::int64_t micros) {
    std::int64_t f = ((micros % 1000000) + 1000000) % 1000000;
    if (f == 0) return "";
    char buf[16];
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(f));
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    return s;
}

inline void fields(std::int64_t micros, int& y, unsigned& mo, unsigned& d, unsigned& h, unsigned& mi, unsigned& s) {
    std::int64_t secs = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
    std::int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    std::int64_t rem = secs - days * 86400;
    civil_from_days(days, y, mo, d);
    h = static_cast<unsigned>(rem / 3600);
    mi = static_cast<unsigned>((rem % 3600) / 60);
    s = static_cast<unsigned>(rem % 60);
}

/// A wall-clock time written with a contract's format.
inline std::string format_timestamp(Timestamp t, const std::vector<FormatItem>& items) {
    int y;
    unsigned mo, d, h, mi, s;
    fields(t.micros, y, mo, d, h, mi, s);
    std::string out;
    char buf[16];
    for (const auto& item : items) {
        switch (item.spec) {
            case 0: out += item.literal; break;
            case 'Y': std::snprintf(buf, sizeof buf, "%04d", y); out += buf; break;
            case 'm': std::snprintf(buf, sizeof buf, "%02u", mo); out += buf; break;
            case 'd': std::snprintf(buf, sizeof buf, "%02u", d); out += buf; break;
            case 'H': std::snprintf(buf, sizeof buf, "%02u", h); out += buf; break;
            case 'M': std::snprintf(buf, sizeof buf, "%02u", mi); out += buf; break;
            case 'S': std::snprintf(buf, sizeof buf, "%02u", s); out += buf; break;
            default: out += fraction(t.micros); break;
        }
    }
    return out;
}

/// RFC 3339 in UTC.
inline std::string format_rfc3339(TimestampTz t) {
    static const std::vector<FormatItem> items = {{'Y', nullptr}, {0, "-"}, {'m', nullptr}, {0, "-"},      {'d', nullptr},
                                                  {0, "T"},       {'H', nullptr}, {0, ":"}, {'M', nullptr}, {0, ":"},
                                                  {'S', nullptr}, {'f', nullptr}};
    return format_timestamp(Timestamp{t.micros}, items) + "Z";
}

/// A `date` (`YYYY-MM-DD`): days since the epoch, or nothing after reporting.
inline std::optional<std::int64_t> check_date(Checker& cx, const char* field, const std::string& text) {
    static const std::vector<FormatItem> items = {{'Y', nullptr}, {0, "-"}, {'m', nullptr}, {0, "-"}, {'d', nullptr}};
    auto micros = parse_timestamp(text, items);
    if (!micros) {
        cx.report("invalid_format", field, Policy::Reject, "is not a date (YYYY-MM-DD)");
        return std::nullopt;
    }
    return *micros / 86400000000LL;
}

/// A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by
/// time. Events get one when they are made and keep it through retries and the queue: the
/// server stores an event whose answer was lost once, however often it is sent.
inline std::string uuid_v7() {
    thread_local std::mt19937_64 rng{[] {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device()};
        return std::mt19937_64(seed);
    }()};
    unsigned char bytes[16];
    const std::uint64_t first = rng(), second = rng();
    for (int i = 0; i < 8; ++i) {
        bytes[i] = static_cast<unsigned char>(first >> (8 * i));
        bytes[8 + i] = static_cast<unsigned char>(second >> (8 * i));
    }
    auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch()).count());
    for (int i = 5; i >= 0; --i) {
        bytes[i] = static_cast<unsigned char>(ms & 0xff);
        ms >>= 8;
    }
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x70);
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
    static const char* digits = "0123456789abcdef";
    std::string text;
    text.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
        text.push_back(digits[bytes[i] >> 4]);
        text.push_back(digits[bytes[i] & 0x0f]);
    }
    return text;
}

inline void check_uuid(Checker& cx, const char* field, const std::string& text) {
    static const std::regex re("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$");
    if (!std::regex_match(text, re)) cx.report("invalid_format", field, Policy::Reject, "is not a UUID");
}

/// A finite number (a float within range), or false after reporting.
inline bool check_number(Checker& cx, const char* field, double value) {
    if (!std::isfinite(value)) {
        cx.report("wrong_type", field, Policy::Reject, "expected number, found a non-finite value");
        return false;
    }
    return true;
}

/// The unscaled value of a decimal given as text, as the server parses it: syntax, scale, precision.
inline std::optional<long double> check_decimal(Checker& cx, const char* field, const std::string& text, int precision,
                                                int scale) {
    static const std::regex re("^(-?)([0-9]+)(?:\\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$");
    std::smatch m;
    if (!std::regex_match(text, m, re)) {
        cx.report("invalid_format", field, Policy::Reject, "is not a decimal number");
        return std::nullopt;
    }
    const std::string int_part = m.str(2), frac_part = m.str(3);
    const long exponent = m[4].matched ? std::stol(m.str(4)) : 0;
    std::string digits = int_part + frac_part;
    digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
    const long point = exponent - static_cast<long>(frac_part.size()) + scale;
    std::string unscaled;
    if (point >= 0) {
        unscaled = digits.empty() ? "" : digits + std::string(static_cast<std::size_t>(std::min(point, 80L)), '0');
    } else {
        const std::size_t drop = static_cast<std::size_t>(-point);
        const std::string dropped = drop >= digits.size() ? digits : digits.substr(digits.size() - drop);
        if (dropped.find_first_not_of('0') != std::string::npos) {
            cx.report("out_of_range", field, Policy::Reject, "more than " + std::to_string(scale) + " digits after the point");
            return std::nullopt;
        }
        unscaled = drop >= digits.size() ? "" : digits.substr(0, digits.size() - drop);
    }
    if (unscaled.size() > static_cast<std::size_t>(precision)) {
        cx.report("out_of_range", field, Policy::Reject,
                  "does not fit decimal(" + std::to_string(precision) + "," + std::to_string(scale) + ")");
        return std::nullopt;
    }
    const long double value = unscaled.empty() ? 0.0L : std::strtold(unscaled.c_str(), nullptr);
    return m.str(1) == "-" ? -value : value;
}

// ----- readers from parsed JSON ----------------------------------------------------------------

namespace read {

inline const char* kind(const Json* v) {
    if (v == nullptr) return "nothing";
    switch (v->kind) {
        case Json::Kind::Null: return "null";
        case Json::Kind::Bool: return "boolean";
        case Json::Kind::Number: return "number";
        case Json::Kind::String: return "string";
        case Json::Kind::Array: return "array";
        case Json::Kind::Object: return "object";
    }
    return "value";
}

[[noreturn]] inline void expected(const char* what, const Json* v) {
    throw DecodeError(std::string("expected ") + what + ", found " + kind(v));
}

inline bool present(const Json* v) { return v != nullptr && v->kind != Json::Kind::Null; }

inline const Json& required(const Json* v) {
    if (!present(v)) expected("a value", v);
    return *v;
}

/// An object whose keys are all allowed (an empty list: any key, unknown ones are dropped).
inline const Json& object(const Json& v, const std::vector<const char*>& allowed) {
    if (v.kind != Json::Kind::Object) expected("object", &v);
    if (!allowed.empty()) {
        for (const auto& m : v.members) {
            if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return m.first == a; })) {
                throw DecodeError(quote(m.first) + " is not a field here");
            }
        }
    }
    return v;
}

inline std::string string(const Json& v) {
    if (v.kind != Json::Kind::String) expected("string", &v);
    return v.text;
}

inline bool boolean(const Json& v) {
    if (v.kind != Json::Kind::Bool) expected("boolean", &v);
    return v.flag;
}

inline double double_(const Json& v) {
    if (v.kind != Json::Kind::Number) expected("number", &v);
    return std::strtod(v.text.c_str(), nullptr);
}

inline float float_(const Json& v) {
    const double d = double_(v);
    if (std::fabs(d) > 3.4028234663852886e38) throw DecodeError("does not fit a float");
    return static_cast<float>(d);
}

inline std::int64_t long_(const Json& v) {
    if (v.kind != Json::Kind::Number) expected("number", &v);
    if (v.text.find_first_of(".eE") == std::string::npos) {
        errno = 0;
        const long long n = std::strtoll(v.text.c_str(), nullptr, 10);
        if (errno == ERANGE) throw DecodeError("does not fit a long");
        return n;
    }
    const double d = std::strtod(v.text.c_str(), nullptr);
    if (d != std::floor(d) || std::fabs(d) >= 9.2e18) throw DecodeError("not a long: " + v.text);
    return static_cast<std::int64_t>(d);
}

inline std::int32_t int_(const Json& v) {
    const std::int64_t n = long_(v);
    if (n < INT32_MIN || n > INT32_MAX) throw DecodeError("does not fit an int");
    return static_cast<std::int32_t>(n);
}

inline std::string decimal(const Json& v) {
    if (v.kind == Json::Kind::Number || v.kind == Json::Kind::String) return v.text;
    expected("number or numeric string", &v);
}

inline Timestamp timestamp(const Json& v, const std::vector<FormatItem>& format) {
    auto micros = parse_timestamp(string(v), format);
    if (!micros) throw DecodeError("not a timestamp");
    return Timestamp{*micros};
}

inline TimestampTz timestamptz(const Json& v) {
    auto micros = parse_rfc3339(string(v));
    if (!micros) throw DecodeError("not a timestamp");
    return TimestampTz{*micros};
}

template <class T, class F>
std::vector<T> list(const Json& v, F item) {
    if (v.kind != Json::Kind::Array) expected("array", &v);
    std::vector<T> out;
    for (const auto& i : v.items) out.push_back(item(i));
    return out;
}

template <class T, class F>
std::map<std::string, T> map(const Json& v, F item) {
    if (v.kind != Json::Kind::Object) expected("object", &v);
    std::map<std::string, T> out;
    for (const auto& m : v.members) out.emplace(m.first, item(m.second));
    return out;
}

}  // namespace read

namespace write {

template <class T, class F>
std::string list(const std::vector<T>& values, F item) {
    std::string out = "[";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ",";
        out += item(values[i]);
    }
    return out + "]";
}

template <class T, class F>
std::string map(const std::map<std::string, T>& values, F item) {
    std::string out = "{";
    bool first = true;
    for (const auto& kv : values) {
        if (!first) out += ",";
        first = false;
        out += quote(kv.first) + ":" + item(kv.second);
    }
    return out + "}";
}

}  // namespace write

// ----- the client ------------------------------------------------------------------------------

/// An HTTP answer.
struct HttpAnswer {
    int status = 0;
    std::string body;
};

/// A network failure (no HTTP answer): retried.
struct NetworkError : std::runtime_error {
    explicit NetworkError(const std::string& what) : std::runtime_error(what) {}
};

/// An HTTP answer the client does not retry (4xx), or the last one after every retry.
struct HttpError : std::runtime_error {
    HttpError(int status, const std::string& body)
        : std::runtime_error("HTTP " + std::to_string(status) + ": " + body), status(status), body(body) {}
    int status;
    std::string body;
};

/// An event the client refused before sending: it breaks a rule the server would reject.
struct ContractViolation : std::runtime_error {
    explicit ContractViolation(std::vector<Violation> v)
        : std::runtime_error(v.empty() ? "" : v.front().path + ": " + v.front().code + ": " + v.front().message),
          violations(std::move(v)) {}
    std::vector<Violation> violations;
};

/// How requests travel: libcurl (contractc_curl.hpp), FHttpModule in Unreal, a fake in tests.
/// Throws NetworkError when there is no answer.
class Transport {
public:
    virtual ~Transport() = default;
    virtual HttpAnswer send(const std::string& method, const std::string& url,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::string& content_type, const std::string& body) = 0;
};

/// What a generated module tells the client about its contract and event type.
template <class E>
struct ContractInfo {
    std::string name;
    std::string version;
    std::string route;
    std::string batch_route;
    std::size_t max_batch_events = 500;
    std::size_t max_body_bytes = 65536;
    std::function<std::vector<Violation>(const E&, std::int64_t)> validate;
    std::function<std::string(const E&)> to_json;
};

/// A token from the game's own sign-in, and when it expires if the game knows.
struct ProvidedToken {
    /// Sent as the `Authorization` header, as given (`serve` takes it with or without `Bearer `).
    std::string token;
    /// Milliseconds since the epoch (the clock of `Options::now_ms`): asked again
    /// `refresh_margin_seconds` before. Without it, the token is used until a 401.
    std::optional<std::int64_t> expires_at_ms;
};

/// The game's sign-in: its backend's access token for the player, in place of the guest login.
/// `force_refresh` is true after the server refused the last token (401): return a new token, not
/// a cached one. Called on the client's thread. What it throws fails `send`; `send_batch` and
/// `flush` retry a NetworkError as the request's own and end on anything else (a flush keeps its
/// events queued).
using TokenProvider = std::function<ProvidedToken(bool force_refresh)>;

struct Options {
    /// Base of the API, ending in `/`: `https://host/prod/`.
    std::string base_url;
    /// Base of the identity service; default `base_url`.
    std::string login_base_url;
    /// Directory for identity, tokens and the queue (must exist).
    std::string state_dir = ".";
    std::size_t max_queued_events = 1000;
    int max_attempts = 5;
    int base_backoff_ms = 200;
    int max_backoff_ms = 10000;
    int refresh_margin_seconds = 60;
    /// Extra query for `login-as-guest`, e.g. `scope=authenticated`.
    std::string login_query;
    /// The game's own sign-in (docs/clients.md): its tokens are sent instead of a guest's, so the
    /// server's `player_id` is the game's player. Default (empty): the guest login.
    TokenProvider token_provider;
    std::function<double()> random;
    std::function<void(int)> sleep;
    std::function<std::int64_t()> now_ms;
};

/// The most events one batch request carries: Kinesis `PutRecords` takes 500 records, so the
/// deployed API's batch model refuses more (`serve` takes the contract's `max_batch_events`).
constexpr std::size_t max_events_per_batch_request = 500;

/// The most bytes one batch request's body (the JSON array) weighs, unless a single event is
/// larger: one `PutRecords` call takes 5 MiB, and the deployed API puts each event base64-encoded
/// (4/3 of its size) in an envelope; API Gateway takes 10 MB per request, `serve`
/// `max_body_bytes × max_batch_events` (at most 16 MiB).
constexpr std::size_t max_batch_request_bytes = 3000000;

/// How many of `bodies` (from `first`) one batch request carries: at most `max_events`, and no
/// more than `max_bytes` of JSON array (always at least one event).
template <class It, class Body>
std::size_t batch_length(It first, It last, Body body, std::size_t max_events, std::size_t max_bytes) {
    std::size_t bytes = 1;  // `[` and `]`, less the comma the first event does not need
    std::size_t n = 0;
    for (; first != last && n < max_events; ++first) {
        const std::size_t next = bytes + body(*first).size() + 1;
        if (n > 0 && next > max_bytes) break;
        bytes = next;
        ++n;
    }
    return n;
}

/// What became of one event of a batch. accepted, quarantined, rejected: `serve`'s verdict.
/// added: the deployed API put it in the stream (its verdict comes later, from the Glue job).
/// failed: not acknowledged after the last attempt (or not sent: an earlier request failed).
enum class BatchOutcome { accepted, quarantined, rejected, added, failed };

struct BatchEventResult {
    BatchOutcome outcome = BatchOutcome::failed;
    /// Why it failed: the deployed API's error code and message, or the last failure.
    std::string error;
};

/// Counts by outcome; `sent` is every event the server answered for (all but failed).
struct BatchCounts {
    std::size_t sent = 0, accepted = 0, quarantined = 0, rejected = 0, added = 0;

    void count(BatchOutcome outcome) {
        switch (outcome) {
            case BatchOutcome::accepted: ++accepted; break;
            case BatchOutcome::quarantined: ++quarantined; break;
            case BatchOutcome::rejected: ++rejected; break;
            case BatchOutcome::added: ++added; break;
            case BatchOutcome::failed: return;
        }
        ++sent;
    }
};

/// What a flush did, and what is left queued.
struct FlushResult : BatchCounts {
    std::size_t remaining = 0;
};

/// What `send_batch` did: counts by outcome, and one result per event in the order given.
struct BatchResult : BatchCounts {
    std::size_t failed = 0;
    std::vector<BatchEventResult> results;

    void add(const BatchEventResult& r) {
        results.push_back(r);
        if (r.outcome == BatchOutcome::failed) ++failed;
        count(r.outcome);
    }
};

/// A batch not every event of which was acknowledged: `result` says which were; `status` is the
/// last HTTP status (0 after a network error) and `what()` says why.
struct BatchError : std::runtime_error {
    BatchError(BatchResult r, int status, const std::string& why)
        : std::runtime_error(std::to_string(r.failed) + " of " + std::to_string(r.results.size()) + " events not sent: " + why),
          result(std::move(r)), status(status) {}
    BatchResult result;
    int status;
};

/// One result per event of the request (`count`) from `serve`'s `{"results": [{"index",
/// "verdict", ...}]}` or the deployed API's `{"results": [{"index", "result": "added" | "failed",
/// "error", "message"}]}`; nothing when the answer has no such list (a plain 5xx, a proxy's page).
inline std::optional<std::vector<BatchEventResult>> read_batch_results(const std::string& body, std::size_t count) {
    Json parsed;
    try {
        parsed = parse_json(body);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    const Json* list = parsed.get("results");
    if (list == nullptr || list->kind != Json::Kind::Array || list->items.size() != count) return std::nullopt;
    std::vector<std::optional<BatchEventResult>> read(count);
    auto text = [](const Json& entry, const char* key) -> std::string {
        const Json* v = entry.get(key);
        return v != nullptr && v->kind == Json::Kind::String ? v->text : std::string();
    };
    for (std::size_t position = 0; position < count; ++position) {
        const Json& entry = list->items[position];
        if (entry.kind != Json::Kind::Object) return std::nullopt;
        std::size_t index = position;
        if (const Json* n = entry.get("index"); n != nullptr && n->kind == Json::Kind::Number) {
            if (n->text.empty() || n->text.size() > 9 || n->text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
            index = static_cast<std::size_t>(std::stoul(n->text));
        }
        if (index >= count || read[index]) return std::nullopt;
        const std::string verdict = text(entry, "verdict");
        const std::string result = text(entry, "result");
        BatchEventResult r;
        if (verdict == "accept") r.outcome = BatchOutcome::accepted;
        else if (verdict == "quarantine") r.outcome = BatchOutcome::quarantined;
        else if (verdict == "reject") r.outcome = BatchOutcome::rejected;
        else if (result == "added") r.outcome = BatchOutcome::added;
        else if (result == "failed") r.error = text(entry, "error") + ": " + text(entry, "message");
        else return std::nullopt;
        read[index] = r;
    }
    std::vector<BatchEventResult> out;
    for (auto& r : read) out.push_back(*r);
    return out;
}

/// Files replaced atomically (write, then rename).
inline void write_file(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot replace " + path);
}

inline std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::string url_encode(const std::string& s) {
    std::string out;
    char buf[4];
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
        else {
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

/// `https://host/prod/` + `/prod/put-record` → `https://host/prod/put-record`; relative paths append.
inline std::string resolve(const std::string& base, const std::string& path) {
    if (!path.empty() && path[0] == '/') {
        const std::size_t scheme = base.find("://");
        const std::size_t slash = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
        return (slash == std::string::npos ? base : base.substr(0, slash)) + path;
    }
    return base + path;
}

/**
 * Sends one contract's events: validates each locally (an event the server would reject is
 * refused and never sent), signs in with the game's token provider or as a guest (keeping the
 * identity), refreshes the token before
 * it expires, retries network errors and 5xx with exponential backoff and jitter (never 4xx), and
 * keeps a bounded persistent queue (a journal file, each change flushed before the call returns)
 * flushed in batches. Not thread-safe: use one client per thread.
 */
template <class E>
class Client {
public:
    Client(ContractInfo<E> contract, Options options, Transport& transport)
        : contract_(std::move(contract)), options_(std::move(options)), transport_(transport) {
        if (!options_.random) {
            options_.random = [rng = std::make_shared<std::mt19937_64>(std::random_device{}())]() {
                return std::uniform_real_distribution<double>(0.0, 1.0)(*rng);
            };
        }
        if (!options_.sleep) options_.sleep = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
        if (!options_.now_ms) options_.now_ms = [] { return now_utc().micros / 1000; };
        if (options_.login_base_url.empty()) options_.login_base_url = options_.base_url;
        load_queue();
    }

    /// The guest's user id once logged in.
    std::optional<std::string> user_id() const {
        auto saved = read_file(path("identity.json"));
        if (!saved) return std::nullopt;
        return read::string(read::required(parse_json(*saved).get("user_id")));
    }

    std::size_t queued() const { return items_.size(); }
    std::size_t dropped() const { return dropped_; }

    /// Validates locally; throws ContractViolation on a rejection.
    std::vector<Violation> check(const E& event) const {
        auto violations = contract_.validate(event, options_.now_ms() * 1000);
        if (rejects(violations)) throw ContractViolation(violations);
        return violations;
    }

    /// Sends one event now; throws HttpError on a 4xx or after the last retry.
    HttpAnswer send(const E& event) {
        check(event);
        return post(contract_.route, "application/json", contract_.to_json(event));
    }

    /// Sends events now to the batch route: JSON arrays of at most `max_batch_events` (and 500)
    /// events and 3 MB per request. Events the server did not acknowledge (a network error, a 5xx, or a
    /// record the deployed API failed) are sent again, alone, with backoff; an acknowledged one
    /// never is. Throws BatchError (its `result` says what became of each event) when some event
    /// was still not acknowledged after the last attempt or on a 4xx.
    BatchResult send_batch(const std::vector<E>& events) {
        std::vector<std::string> bodies;
        for (const auto& e : events) {
            check(e);
            bodies.push_back(contract_.to_json(e));
        }
        const std::string& route = batch_route();
        BatchResult result;
        std::optional<Delivery> failed;
        for (std::size_t start = 0; start < bodies.size();) {
            const auto from = bodies.begin() + static_cast<std::ptrdiff_t>(start);
            const std::size_t n = batch_length_of(from, bodies.end(), [](const std::string& b) -> const std::string& { return b; });
            const std::vector<std::string> chunk(from, from + static_cast<std::ptrdiff_t>(n));
            start += n;
            if (failed) {
                for (std::size_t i = 0; i < chunk.size(); ++i) result.add({BatchOutcome::failed, "not sent"});
                continue;
            }
            Delivery delivery = deliver(route, chunk, [](const std::vector<std::size_t>&) {});
            for (const auto& r : delivery.results) result.add(r);
            if (delivery.failure) failed = std::move(delivery);
        }
        if (failed) throw BatchError(std::move(result), failed->status, failed->why);
        return result;
    }

    /// Validates and queues an event; it is in the journal file when this returns.
    void enqueue(const E& event) {
        check(event);
        const std::uint64_t id = next_++;
        items_.emplace_back(id, contract_.to_json(event));
        std::string record = "+" + std::to_string(id) + " " + items_.back().second + "\n";
        while (items_.size() > options_.max_queued_events) {
            record += "-" + std::to_string(items_.front().first) + "\n";
            items_.erase(items_.begin());
            ++dropped_;
            record += "d\n";
        }
        append(record);
    }

    /// Sends the queue in batches; events leave it once the server answered for them. Throws the
    /// last failure (HttpError, NetworkError) when some event is still not acknowledged: those
    /// stay queued, the acknowledged ones are gone.
    FlushResult flush() {
        FlushResult result;
        const std::string& route = batch_route();
        while (!items_.empty()) {
            const std::size_t n = batch_length_of(items_.begin(), items_.end(), [](const auto& i) -> const std::string& { return i.second; });
            const std::vector<std::pair<std::uint64_t, std::string>> batch(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(n));
            std::vector<std::string> bodies;
            for (const auto& item : batch) bodies.push_back(item.second);
            // Acknowledged events leave the journal as soon as their answer is in, before any retry
            // of the others: a crash in between never sends them twice.
            Delivery delivery = deliver(route, bodies, [&](const std::vector<std::size_t>& done) {
                std::string record;
                for (std::size_t k : done) {
                    const std::uint64_t id = batch[k].first;
                    record += "-" + std::to_string(id) + "\n";
                    items_.erase(std::remove_if(items_.begin(), items_.end(), [&](const auto& i) { return i.first == id; }),
                                 items_.end());
                }
                append(record);
            });
            for (const auto& r : delivery.results) result.count(r.outcome);
            if (delivery.failure) {
                compact();
                std::rethrow_exception(delivery.failure);
            }
        }
        compact();
        result.remaining = items_.size();
        return result;
    }

    /// Flushes before quitting; what is not sent stays queued for the next session.
    FlushResult close() { return flush(); }

    /// Logs in as a guest: the saved guest if there is one, else a new guest whose identity is kept.
    std::string login() {
        std::string query = options_.login_query;
        if (auto saved = read_file(path("identity.json"))) {
            Json identity = parse_json(*saved);
            if (!query.empty()) query += "&";
            query += "user_id=" + url_encode(read::string(read::required(identity.get("user_id")))) +
                     "&guest_secret=" + url_encode(read::string(read::required(identity.get("guest_secret"))));
        }
        const std::string url = resolve(options_.login_base_url, "login-as-guest") + (query.empty() ? "" : "?" + query);
        HttpAnswer answer = with_retry("GET", url, headers(""), "", "");
        if (answer.status != 200) throw HttpError(answer.status, answer.body);
        Json body = parse_json(answer.body);
        const Json* user = body.get("user_id");
        const Json* secret = body.get("guest_secret");
        if (user != nullptr && secret != nullptr && user->kind == Json::Kind::String && secret->kind == Json::Kind::String) {
            write_file(path("identity.json"), "{\"user_id\":" + quote(user->text) + ",\"guest_secret\":" + quote(secret->text) + "}");
        }
        return accept_tokens(body, "", 0);
    }

private:
    ContractInfo<E> contract_;
    Options options_;
    Transport& transport_;
    std::vector<std::pair<std::uint64_t, std::string>> items_;
    std::uint64_t next_ = 0;
    std::size_t dropped_ = 0;
    /// The provider's last token, kept in memory only: the game owns it.
    std::optional<ProvidedToken> provided_;
    /// Set by a 401: the provider is asked for a new token, not its cached one.
    bool force_refresh_ = false;

    std::string path(const std::string& file) const {
        return options_.state_dir + "/contractc." + contract_.name + "." + file;
    }

    std::vector<std::pair<std::string, std::string>> headers(const std::string& token) const {
        std::vector<std::pair<std::string, std::string>> h = {{"X-Contract-Version", contract_.version}};
        if (!token.empty()) h.emplace_back("Authorization", token);
        return h;
    }

    /// The journal: `+ID JSON` enqueued, `-ID` answered or dropped, `d` one more dropped.
    void load_queue() {
        auto text = read_file(path("queue"));
        if (!text) return;
        // Only lines ended by a newline count: what follows the last one is a record torn by a
        // crash mid-write, never acknowledged (compact() below drops it).
        for (std::size_t start = 0, end; (end = text->find('\n', start)) != std::string::npos; start = end + 1) {
            const std::string line = text->substr(start, end - start);
            if (line.empty()) continue;
            if (line[0] == '+') {
                const std::size_t space = line.find(' ');
                if (space == std::string::npos) continue;
                const std::uint64_t id = std::stoull(line.substr(1, space - 1));
                items_.emplace_back(id, line.substr(space + 1));
                next_ = std::max(next_, id + 1);
            } else if (line[0] == '-') {
                const std::uint64_t id = std::stoull(line.substr(1));
                items_.erase(std::remove_if(items_.begin(), items_.end(), [&](const auto& i) { return i.first == id; }),
                             items_.end());
            } else if (line[0] == 'd') {
                ++dropped_;
            } else if (line[0] == 'n') {
                next_ = std::max<std::uint64_t>(next_, std::stoull(line.substr(1)));
            }
        }
        if (!text->empty() && text->back() != '\n') compact();
    }

    void append(const std::string& record) {
        std::FILE* f = std::fopen(path("queue").c_str(), "ab");
        if (f == nullptr) throw std::runtime_error("cannot open " + path("queue"));
        const bool ok = std::fwrite(record.data(), 1, record.size(), f) == record.size() && std::fflush(f) == 0;
        std::fclose(f);
        if (!ok) throw std::runtime_error("cannot write " + path("queue"));
    }

    /// Rewrites the journal with only what is queued.
    void compact() {
        std::string text = "n" + std::to_string(next_) + "\n";
        for (std::size_t i = 0; i < dropped_; ++i) text += "d\n";
        for (const auto& item : items_) text += "+" + std::to_string(item.first) + " " + item.second + "\n";
        write_file(path("queue"), text);
    }

    const std::string& batch_route() const {
        if (contract_.batch_route.empty()) throw std::runtime_error("contract " + contract_.name + " has no batch route");
        return contract_.batch_route;
    }

    /// How many events (from `first`) the next batch request carries: within the contract's limits
    /// and the deployed API's.
    template <class It, class Body>
    std::size_t batch_length_of(It first, It last, Body body) const {
        const std::size_t events = std::max<std::size_t>(1, std::min(contract_.max_batch_events, max_events_per_batch_request));
        const std::size_t bytes = std::min(max_batch_request_bytes, std::max<std::size_t>(1, contract_.max_body_bytes) * events);
        return batch_length(first, last, body, events, bytes);
    }

    /// The wait before attempt `attempt + 1`: full jitter under a doubling ceiling.
    int backoff_ms(int attempt) const {
        const double ceiling = std::min<double>(options_.max_backoff_ms, options_.base_backoff_ms * std::pow(2.0, attempt - 1));
        return static_cast<int>(std::floor(options_.random() * ceiling));
    }

    struct Delivery {
        std::vector<BatchEventResult> results;
        /// The last failure when some event was not acknowledged, else null.
        std::exception_ptr failure;
        int status = 0;
        std::string why;
    };

    /// Sends `bodies` (encoded events, at most `batch_length_of()`) as one JSON array, then what is not
    /// acknowledged yet, until every event is or the attempts run out: a network error or a 5xx
    /// without per-event results is retried whole, the events of a failed record alone, with the
    /// backoff of `with_retry`; a 4xx stops (a 401 first re-authenticates once). `acknowledged`
    /// gets the indexes of each answer's acknowledged events as it comes in. Never throws.
    template <class F>
    Delivery deliver(const std::string& route, const std::vector<std::string>& bodies, F acknowledged) {
        Delivery d;
        d.results.resize(bodies.size());
        std::vector<std::size_t> pending;
        for (std::size_t i = 0; i < bodies.size(); ++i) pending.push_back(i);
        bool reauthenticated = false;
        auto fail = [&](int status, const std::string& why) {
            d.status = status;
            d.why = why;
            d.failure = std::make_exception_ptr(HttpError(status, why));
        };
        for (int attempt = 1;; ++attempt) {
            std::optional<HttpAnswer> answer;
            try {
                const std::string tok = token();
                std::string array = "[";
                for (std::size_t k = 0; k < pending.size(); ++k) array += (k > 0 ? "," : "") + bodies[pending[k]];
                array += "]";
                answer = transport_.send("POST", resolve(options_.base_url, route), headers(tok), "application/json", array);
            } catch (const NetworkError& error) {
                d.failure = std::current_exception();
                d.status = 0;
                d.why = error.what();
            } catch (const std::exception& error) {
                // A refused login (retried already): another try would be refused too.
                d.failure = std::current_exception();
                const auto* http = dynamic_cast<const HttpError*>(&error);
                d.status = http != nullptr ? http->status : 0;
                d.why = error.what();
                break;
            }
            if (answer) {
                if (answer->status == 401 && !reauthenticated) {
                    reauthenticated = true;
                    forget_token();
                    --attempt;
                    continue;
                }
                if (answer->status != 200 && answer->status < 500) {
                    fail(answer->status, answer->body);
                    break;
                }
                // A 200 without readable results acknowledged the whole request.
                auto read = read_batch_results(answer->body, pending.size());
                if (!read && answer->status == 200) read = std::vector<BatchEventResult>(pending.size(), {BatchOutcome::added, ""});
                if (!read) {
                    fail(answer->status, answer->body);
                } else {
                    std::vector<std::size_t> done, still;
                    for (std::size_t k = 0; k < read->size(); ++k) {
                        d.results[pending[k]] = (*read)[k];
                        ((*read)[k].outcome == BatchOutcome::failed ? still : done).push_back(pending[k]);
                    }
                    if (!done.empty()) acknowledged(done);
                    pending = still;
                    if (!still.empty()) fail(answer->status, answer->body);
                }
            }
            if (pending.empty()) return Delivery{std::move(d.results), nullptr, 0, ""};
            if (attempt >= options_.max_attempts) break;
            options_.sleep(backoff_ms(attempt));
        }
        for (std::size_t i : pending) {
            if (d.results[i].error.empty()) d.results[i].error = d.why;
        }
        return d;
    }

    HttpAnswer post(const std::string& route, const std::string& content_type, const std::string& body) {
        bool reauthenticated = false;
        for (;;) {
            const std::string tok = token();
            HttpAnswer answer = with_retry("POST", resolve(options_.base_url, route), headers(tok), content_type, body);
            if (answer.status == 401 && !reauthenticated) {
                reauthenticated = true;
                forget_token();
                continue;
            }
            if (answer.status != 200) throw HttpError(answer.status, answer.body);
            return answer;
        }
    }

    HttpAnswer with_retry(const std::string& method, const std::string& url,
                          const std::vector<std::pair<std::string, std::string>>& h, const std::string& content_type,
                          const std::string& body) {
        for (int attempt = 1;; ++attempt) {
            try {
                HttpAnswer answer = transport_.send(method, url, h, content_type, body);
                if (answer.status < 500 || attempt >= options_.max_attempts) return answer;
            } catch (const NetworkError&) {
                if (attempt >= options_.max_attempts) throw;
            }
            options_.sleep(backoff_ms(attempt));
        }
    }

    /// After a 401: the next request gets a fresh token (the provider forced, or a guest login).
    void forget_token() {
        provided_.reset();
        force_refresh_ = true;
        if (!options_.token_provider) std::remove(path("tokens.json").c_str());
    }

    /// The provider's token while it is not within the refresh margin of its expiry, else a new one.
    std::string provided_token() {
        const std::int64_t margin = options_.refresh_margin_seconds * 1000LL;
        if (provided_ && (!provided_->expires_at_ms || *provided_->expires_at_ms - margin > options_.now_ms())) {
            return provided_->token;
        }
        ProvidedToken given = options_.token_provider(force_refresh_);
        if (given.token.empty()) throw std::runtime_error("the token provider gave no token");
        // Cleared only once a token came: a provider that failed is forced again next time.
        force_refresh_ = false;
        provided_ = std::move(given);
        return provided_->token;
    }

    /// A token valid for at least the refresh margin: the game's, or the saved one, a refreshed
    /// one, or a login.
    std::string token() {
        if (options_.token_provider) return provided_token();
        const std::int64_t margin = options_.refresh_margin_seconds * 1000LL;
        const std::int64_t now = options_.now_ms();
        if (auto saved = read_file(path("tokens.json"))) {
            Json t = parse_json(*saved);
            if (read::long_(read::required(t.get("auth_expires_at"))) - margin > now) {
                return read::string(read::required(t.get("auth_token")));
            }
            const std::int64_t refresh_at = read::long_(read::required(t.get("refresh_expires_at")));
            if (refresh_at - margin > now) {
                const std::string refresh = read::string(read::required(t.get("refresh_token")));
                try {
                    HttpAnswer answer = with_retry(
                        "GET", resolve(options_.login_base_url, "refresh-access-token") + "?refresh_token=" + url_encode(refresh),
                        headers(""), "", "");
                    if (answer.status == 200) return accept_tokens(parse_json(answer.body), refresh, refresh_at);
                } catch (const std::exception&) {
                    // fall back to the guest login
                }
            }
        }
        return login();
    }

    std::string accept_tokens(const Json& body, const std::string& previous_refresh, std::int64_t previous_refresh_at) {
        const Json* token = body.get("auth_token");
        if (token == nullptr || token->kind != Json::Kind::String) throw HttpError(200, "no auth_token in the answer");
        const std::int64_t now = options_.now_ms();
        const Json* refresh = body.get("refresh_token");
        const Json* auth_in = body.get("auth_token_expires_in");
        const Json* refresh_in = body.get("refresh_token_expires_in");
        const std::string refresh_token = refresh != nullptr && refresh->kind == Json::Kind::String ? refresh->text : previous_refresh;
        const std::int64_t auth_at = now + (auth_in != nullptr && auth_in->kind == Json::Kind::Number ? read::long_(*auth_in) : 900) * 1000;
        const std::int64_t refresh_at =
            refresh_in != nullptr && refresh_in->kind == Json::Kind::Number ? now + read::long_(*refresh_in) * 1000 : previous_refresh_at;
        write_file(path("tokens.json"), "{\"auth_token\":" + quote(token->text) + ",\"refresh_token\":" + quote(refresh_token) +
                                            ",\"auth_expires_at\":" + std::to_string(auth_at) +
                                            ",\"refresh_expires_at\":" + std::to_string(refresh_at) + "}");
        return token->text;
    }
};

}  // namespace rt
}  // namespace __NAMESPACE__

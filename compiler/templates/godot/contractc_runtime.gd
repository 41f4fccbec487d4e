# The client runtime every generated contract module preloads (`const rt = preload(
# "contractc_runtime.gd")`): the server's violation vocabulary, an exact JSON reader (longs and
# decimals keep their digits), timestamp formats, guest identity, retry, the persistent queue and
# the sender. A port of the TypeScript runtime (compiler/templates/typescript/contractc-runtime.ts)
# to GDScript for Godot 4.2.2 or newer; no `class_name`, so each contract's addon keeps its own
# copy. Errors are values, never crashes: checks report violations, the decoder records its first
# error, the sender returns results with an `error` field.
extends RefCounted

const INT_MIN := -2147483648
const INT_MAX := 2147483647
const LONG_MIN := -9223372036854775807 - 1
const LONG_MAX := 9223372036854775807
## The largest finite 32-bit float.
const FLOAT_MAX := 3.4028234663852886e38
## Microseconds from 0000-01-01 to 1970-01-01, and from 1970-01-01 to 10000-01-01.
const MIN_TIME_MICROS := -62167219200000000
const END_TIME_MICROS := 253402300800000000


## Collects violations with the current JSON path, as the server's validator does.
class Checker:
	extends RefCounted

	## `{code, path, policy, message}`, in the order found.
	var violations: Array[Dictionary] = []
	var _segments: Array = []

	func enter_key(key: String) -> void:
		_segments.append(key)

	func enter_index(index: int) -> void:
		_segments.append(index)

	func leave() -> void:
		_segments.pop_back()

	## `$.players[2].skill`; keys that are not identifiers are quoted: `$.scores["a b"]`.
	func path_of(field: Variant) -> String:
		var path := "$"
		for segment in _segments:
			if segment is int:
				path += "[" + str(segment) + "]"
			else:
				path = Checker.push_key(path, segment)
		if field == null:
			return path
		return Checker.push_key(path, field)

	func report(code: String, field: Variant, policy: String, message: String) -> void:
		violations.append({"code": code, "path": path_of(field), "policy": policy, "message": message})

	static func push_key(path: String, key: String) -> String:
		var plain := key.length() > 0
		for i in key.length():
			var c := key.unicode_at(i)
			if not (Text.is_digit(c) or c == 95 or (c >= 65 and c <= 90) or (c >= 97 and c <= 122)):
				plain = false
		if plain:
			return path + "." + key
		var quoted := ""
		for i in key.length():
			var c := key.unicode_at(i)
			if c == 34:
				quoted += "\\\""
			elif c == 92:
				quoted += "\\\\"
			elif c < 32:
				quoted += "\\u" + Text.hex(c, 4)
			else:
				quoted += key[i]
		return path + "[\"" + quoted + "\"]"


## Text helpers the classes below share (inner classes cannot call the script's functions).
class Text:
	extends RefCounted

	const HEX_DIGITS := "0123456789abcdef"

	static func is_digit(c: int) -> bool:
		return c >= 48 and c <= 57

	## `value` in lowercase hexadecimal, at least `width` digits.
	static func hex(value: int, width: int) -> String:
		var out := ""
		var rest := value
		while rest > 0 or out.length() < width:
			out = HEX_DIGITS[rest & 15] + out
			rest = rest >> 4
		return out

	## `value` in decimal, zero-padded to `width` digits.
	static func pad(value: int, width: int) -> String:
		var out := str(value)
		while out.length() < width:
			out = "0" + out
		return out

	## The number the `count` ASCII digits at `at` spell, or -1.
	static func digits_at(text: String, at: int, count: int) -> int:
		if at + count > text.length():
			return -1
		var value := 0
		for i in range(at, at + count):
			var c := text.unicode_at(i)
			if not is_digit(c):
				return -1
			value = value * 10 + c - 48
		return value

	## A JSON string literal, as JavaScript's `JSON.stringify` writes it.
	static func quote(text: String) -> String:
		var out := "\""
		for i in text.length():
			var c := text.unicode_at(i)
			if c == 34:
				out += "\\\""
			elif c == 92:
				out += "\\\\"
			elif c == 8:
				out += "\\b"
			elif c == 12:
				out += "\\f"
			elif c == 10:
				out += "\\n"
			elif c == 13:
				out += "\\r"
			elif c == 9:
				out += "\\t"
			elif c < 32 or (c >= 0xD800 and c <= 0xDFFF):
				out += "\\u" + hex(c, 4)
			else:
				out += text[i]
		return out + "\""


## What a broken rule does to the event, as the server decides it (the strictest one wins).
static func verdict_of(violations: Array[Dictionary]) -> String:
	var verdict := "accept"
	for v in violations:
		if v["policy"] == "reject":
			return "reject"
		if v["policy"] == "quarantine":
			verdict = "quarantine"
	return verdict


## Characters (Unicode scalar values), as every engine counts lengths. Godot strings hold code
## points, so this is the string's length.
static func char_length(text: String) -> int:
	return text.length()


## A string quoted as JSON (used in messages).
static func quote(text: String) -> String:
	return Text.quote(text)


## The JSON kind of a value, as messages name it.
static func kind_of(value: Variant) -> String:
	return Decoder.kind(value)


## False after reporting `wrong_type` when `value` is not of the Variant type `type` (TYPE_STRING,
## TYPE_BOOL, TYPE_ARRAY, TYPE_DICTIONARY): events are Dictionaries, their values unchecked.
static func check_type(cx: Checker, field: Variant, value: Variant, type: int) -> bool:
	if typeof(value) == type:
		return true
	var names := {TYPE_STRING: "string", TYPE_BOOL: "boolean", TYPE_ARRAY: "array"}
	var wanted: String = names.get(type, "object")
	cx.report("wrong_type", field, "reject", "expected " + wanted + ", found " + Decoder.kind(value))
	return false


## Reports `unknown_field` for each key of `event` not in `fields` (contracts whose
## `unknown_fields` is `reject`: other languages' types cannot hold such a key, a Dictionary can).
static func check_keys(cx: Checker, event: Dictionary, fields: Array) -> void:
	for key in event:
		if not fields.has(key):
			cx.report("unknown_field", str(key), "reject", "not a field of this contract")


## An integer in `min..=max` (an integral float counts, as in JSON Schema), or null after reporting.
## A JSON integer beyond 64 bits decodes as a float: it is reported out of range here.
static func check_integer(
	cx: Checker, field: Variant, value: Variant, min: int, max: int, name: String
) -> Variant:
	var n := 0
	if value is int:
		n = value
	elif value is float and is_finite(value) and value == floorf(value):
		if value >= 9.223372036854775807e18 or value < -9.223372036854775807e18:
			cx.report("out_of_range", field, "reject", _range_message(min, max, name))
			return null
		n = int(value)
	else:
		var what := "number" if value is float else Decoder.kind(value)
		cx.report("wrong_type", field, "reject", "expected integer, found " + what)
		return null
	if n < min or n > max:
		cx.report("out_of_range", field, "reject", _range_message(min, max, name))
		return null
	return n


static func _range_message(min: int, max: int, name: String) -> String:
	return "does not fit " + name + " (" + str(min) + "..=" + str(max) + ")"


## A finite number (a float rounded to 32 bits when `is_float`), or null after reporting.
static func check_number(cx: Checker, field: Variant, value: Variant, is_float: bool) -> Variant:
	if not (value is float or value is int):
		cx.report("wrong_type", field, "reject", "expected number, found " + Decoder.kind(value))
		return null
	var x := float(value)
	if not is_finite(x):
		cx.report("wrong_type", field, "reject", "expected number, found a non-finite value")
		return null
	if is_float:
		if absf(x) > FLOAT_MAX:
			cx.report("out_of_range", field, "reject", "does not fit a float")
			return null
		return PackedFloat32Array([x])[0]
	return x


## A decimal given as text: its unscaled value at `scale` as canonical signed digits ("-1250",
## "0"), or null after reporting. Compare it to bounds with `compare_decimal`.
static func check_decimal(
	cx: Checker, field: Variant, text: String, precision: int, scale: int
) -> Variant:
	var parsed := Numbers.parse_decimal(text, precision, scale)
	if parsed == "syntax":
		cx.report("invalid_format", field, "reject", "is not a decimal number")
		return null
	if parsed == "too_precise":
		var digits := "more than " + str(scale) + " digits after the point"
		cx.report("out_of_range", field, "reject", digits)
		return null
	if parsed == "too_large":
		var size := "(" + str(precision) + "," + str(scale) + ")"
		cx.report("out_of_range", field, "reject", "does not fit decimal" + size)
		return null
	return parsed


## -1, 0 or 1 as `a` is less than, equal to or greater than `b` (canonical signed digits).
static func compare_decimal(a: String, b: String) -> int:
	return Numbers.compare_signed(a, b)


## A `date` (`YYYY-MM-DD`): days since the epoch, or null after reporting.
static func check_date(cx: Checker, field: Variant, text: String) -> Variant:
	var days: Variant = Clock.parse_date(text)
	if days == null:
		cx.report("invalid_format", field, "reject", "is not a date (YYYY-MM-DD)")
	return days


## A timestamp (microseconds since the epoch): itself, or null after reporting one outside the
## years 0000 to 9999 (or not an integer).
static func date_micros(cx: Checker, field: Variant, micros: Variant) -> Variant:
	if not (micros is int) or micros < MIN_TIME_MICROS or micros >= END_TIME_MICROS:
		cx.report("invalid_format", field, "reject", "not a valid time (years 0000 to 9999)")
		return null
	return micros


## A canonical UUID (any case), or false after reporting.
static func check_uuid(cx: Checker, field: Variant, text: String) -> bool:
	var ok := text.length() == 36
	for i in text.length():
		var c := text.unicode_at(i)
		if i == 8 or i == 13 or i == 18 or i == 23:
			ok = ok and c == 45
		else:
			ok = ok and (Text.is_digit(c) or (c >= 97 and c <= 102) or (c >= 65 and c <= 70))
	if not ok:
		cx.report("invalid_format", field, "reject", "is not a UUID")
	return ok


## A contract pattern compiled for full matches with `full_match`. PCRE2's `$` also matches
## before a final newline, so the end is `\z` (and `full_match` checks the span too).
static func pattern(source: String) -> RegEx:
	var re := RegEx.new()
	re.compile("^(?:" + source + ")\\z")
	return re


static func full_match(re: RegEx, text: String) -> bool:
	var m := re.search(text)
	return m != null and m.get_start() == 0 and m.get_end() == text.length()


## A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by time.
## Events get one when they are made and keep it through retries and the queue: the server stores
## an event whose answer was lost once, however often it is sent.
@warning_ignore("integer_division")
static func uuidv7() -> String:
	var bytes := Crypto.new().generate_random_bytes(16)
	var ms := now_micros() / 1000
	for i in range(5, -1, -1):
		bytes[i] = ms & 255
		ms = ms >> 8
	bytes[6] = (bytes[6] & 0x0f) | 0x70
	bytes[8] = (bytes[8] & 0x3f) | 0x80
	var out := ""
	for i in 16:
		if i == 4 or i == 6 or i == 8 or i == 10:
			out += "-"
		out += Text.hex(bytes[i], 2)
	return out


## Now, in microseconds since the Unix epoch (UTC).
static func now_micros() -> int:
	return Clock.now_micros()


## The local wall-clock time (microseconds of the local date and time read as UTC): what a
## `timestamp` field (no zone) holds when the contract asks for the client's local time.
static func local_wall_clock() -> int:
	return Clock.now_micros() + int(Time.get_time_zone_from_system()["bias"]) * 60000000


## Parses `text` against a format (the whole text): microseconds since the epoch read as UTC, or
## null. The server's strict rules: fixed widths, real calendar days, no second 60.
static func parse_timestamp(text: String, items: Array) -> Variant:
	return Clock.parse(text, items)


## RFC 3339 with `Z` or an offset: microseconds UTC, or null.
static func parse_rfc3339(text: String) -> Variant:
	return Clock.parse_rfc3339(text)


## Microseconds since the epoch written with a format (read as UTC: the wall clock).
static func format_timestamp(micros: int, items: Array) -> String:
	return Clock.format(micros, items)


## Dates and times on the proleptic Gregorian calendar, in microseconds since 1970-01-01.
class Clock:
	extends RefCounted

	const MICROS_PER_DAY := 86400000000
	const RFC3339_DATE := ["%Y", {"literal": "-"}, "%m", {"literal": "-"}, "%d"]
	const RFC3339_TIME := ["%H", {"literal": ":"}, "%M", {"literal": ":"}, "%S", "%.f"]

	static func now_micros() -> int:
		return int(Time.get_unix_time_from_system() * 1000000.0)

	## Days since 1970-01-01 (Howard Hinnant's days_from_civil).
	@warning_ignore("integer_division")
	static func days_from_civil(year: int, month: int, day: int) -> int:
		var y := year - 1 if month <= 2 else year
		var era := (y if y >= 0 else y - 399) / 400
		var yoe := y - era * 400
		var doy := (153 * (month - 3 if month > 2 else month + 9) + 2) / 5 + day - 1
		var doe := yoe * 365 + yoe / 4 - yoe / 100 + doy
		return era * 146097 + doe - 719468

	## `[year, month, day]` of a day since 1970-01-01 (civil_from_days).
	@warning_ignore("integer_division")
	static func civil_from_days(days: int) -> Array[int]:
		var z := days + 719468
		var era := (z if z >= 0 else z - 146096) / 146097
		var doe := z - era * 146097
		var yoe := (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
		var doy := doe - (365 * yoe + yoe / 4 - yoe / 100)
		var mp := (5 * doy + 2) / 153
		var day := doy - (153 * mp + 2) / 5 + 1
		var month := mp + 3 if mp < 10 else mp - 9
		var year := yoe + era * 400 + (1 if month <= 2 else 0)
		return [year, month, day]

	static func days_in_month(year: int, month: int) -> int:
		if month == 2:
			var leap := (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
			return 29 if leap else 28
		return 30 if month == 4 or month == 6 or month == 9 or month == 11 else 31

	## `a / b` rounded down (`b` > 0); GDScript's `/` truncates toward zero.
	@warning_ignore("integer_division")
	static func floor_div(a: int, b: int) -> int:
		var q := a / b
		if a % b != 0 and a < 0:
			q -= 1
		return q

	## `[year, month, day, hour, minute, second, micros]` read with `items`, or null.
	static func fields(text: String, items: Array) -> Variant:
		var at := 0
		var values := {"%Y": 1970, "%m": 1, "%d": 1, "%H": 0, "%M": 0, "%S": 0}
		var micros := 0
		for item in items:
			if item is Dictionary:
				var literal: String = item["literal"]
				if text.substr(at, literal.length()) != literal:
					return null
				at += literal.length()
			elif item == "%.f":
				if at < text.length() and text.unicode_at(at) == 46:
					var end := at + 1
					while end < text.length() and Text.is_digit(text.unicode_at(end)):
						end += 1
					var count := end - at - 1
					if count == 0 or count > 9:
						return null
					micros = Text.digits_at(text, at + 1, mini(count, 6))
					for _i in range(count, 6):
						micros *= 10
					at = end
			else:
				var width := 4 if item == "%Y" else 2
				var value := Text.digits_at(text, at, width)
				if value < 0:
					return null
				values[item] = value
				at += width
		var year: int = values["%Y"]
		var month: int = values["%m"]
		var day: int = values["%d"]
		if at != text.length() or month < 1 or month > 12 or day < 1:
			return null
		if day > days_in_month(year, month):
			return null
		if values["%H"] > 23 or values["%M"] > 59 or values["%S"] > 59:
			return null
		return [year, month, day, values["%H"], values["%M"], values["%S"], micros]

	static func parse(text: String, items: Array) -> Variant:
		var f: Variant = fields(text, items)
		if f == null:
			return null
		var days := days_from_civil(f[0], f[1], f[2])
		return (days * 86400 + f[3] * 3600 + f[4] * 60 + f[5]) * 1000000 + f[6]

	static func parse_date(text: String) -> Variant:
		var f: Variant = fields(text, RFC3339_DATE)
		if f == null:
			return null
		return days_from_civil(f[0], f[1], f[2])

	static func parse_rfc3339(text: String) -> Variant:
		if text.length() < 20:
			return null
		var sep := text[10]
		if sep != "T" and sep != "t" and sep != " ":
			return null
		var local := text.substr(0, text.length() - 1)
		var offset := 0
		var last := text[text.length() - 1]
		if last != "Z" and last != "z":
			var zone := text.length() - 6
			var sign := 1 if text[zone] == "+" else (-1 if text[zone] == "-" else 0)
			var h := Text.digits_at(text, zone + 1, 2)
			var m := Text.digits_at(text, zone + 4, 2)
			if sign == 0 or text[zone + 3] != ":" or h < 0 or m < 0 or h > 23 or m > 59:
				return null
			local = text.substr(0, zone)
			offset = sign * (h * 3600 + m * 60)
		var items: Array = RFC3339_DATE + [{"literal": sep}] + RFC3339_TIME
		var micros: Variant = parse(local, items)
		if micros == null:
			return null
		return micros - offset * 1000000

	## Writes `micros` with `items`; `%.f` writes nothing for whole seconds, else 3 digits (6 when
	## the microseconds need them).
	@warning_ignore("integer_division")
	static func format(micros: int, items: Array) -> String:
		var days := floor_div(micros, MICROS_PER_DAY)
		var rest := micros - days * MICROS_PER_DAY
		var date := civil_from_days(days)
		var second := rest / 1000000
		var fraction := rest % 1000000
		var values := {
			"%Y": Text.pad(date[0], 4),
			"%m": Text.pad(date[1], 2),
			"%d": Text.pad(date[2], 2),
			"%H": Text.pad(second / 3600, 2),
			"%M": Text.pad(second / 60 % 60, 2),
			"%S": Text.pad(second % 60, 2),
			"%.f": "" if fraction == 0 else "." + fraction_digits(fraction),
		}
		var out := ""
		for item in items:
			out += item["literal"] if item is Dictionary else values[item]
		return out

	@warning_ignore("integer_division")
	static func fraction_digits(fraction: int) -> String:
		return Text.pad(fraction / 1000, 3) if fraction % 1000 == 0 else Text.pad(fraction, 6)

	## RFC 3339 in UTC as JavaScript's `toISOString` writes it (milliseconds always).
	static func format_rfc3339(micros: int) -> String:
		var whole := format(micros, RFC3339_DATE + [{"literal": "T"}] + RFC3339_TIME.slice(0, 5))
		var fraction := micros - floor_div(micros, 1000000) * 1000000
		return whole + "." + fraction_digits(fraction) + "Z"


## Exact decimal arithmetic on digit strings: decimals, and doubles written and read exactly.
class Numbers:
	extends RefCounted

	const LIMB := 1000000000

	## `-?digits(.digits)?(e[+-]?digits)?` as canonical signed digits of the unscaled value at
	## `scale`, or "syntax", "too_precise" or "too_large".
	static func parse_decimal(text: String, precision: int, scale: int) -> String:
		var at := 1 if text.begins_with("-") else 0
		var negative := at == 1
		var start := at
		while at < text.length() and Text.is_digit(text.unicode_at(at)):
			at += 1
		var int_part := text.substr(start, at - start)
		var frac_part := ""
		if int_part == "":
			return "syntax"
		if at < text.length() and text[at] == ".":
			start = at + 1
			at = start
			while at < text.length() and Text.is_digit(text.unicode_at(at)):
				at += 1
			frac_part = text.substr(start, at - start)
			if frac_part == "":
				return "syntax"
		var exponent := 0
		if at < text.length() and (text[at] == "e" or text[at] == "E"):
			at += 1
			var sign := 1
			if at < text.length() and (text[at] == "+" or text[at] == "-"):
				sign = -1 if text[at] == "-" else 1
				at += 1
			if at == text.length():
				return "syntax"
			while at < text.length() and Text.is_digit(text.unicode_at(at)):
				exponent = mini(exponent * 10 + text.unicode_at(at) - 48, 100000000)
				at += 1
			exponent *= sign
		if at != text.length():
			return "syntax"
		var digits := strip_zeros(int_part + frac_part)
		var point := exponent - frac_part.length() + scale
		var unscaled := ""
		if point >= 0:
			unscaled = "" if digits == "" else digits + "0".repeat(mini(point, 80))
		else:
			var keep := maxi(digits.length() + point, 0)
			for i in range(keep, digits.length()):
				if digits[i] != "0":
					return "too_precise"
			unscaled = digits.substr(0, keep)
		if unscaled.length() > precision:
			return "too_large"
		if unscaled == "":
			return "0"
		return "-" + unscaled if negative else unscaled

	static func strip_zeros(digits: String) -> String:
		var first := 0
		while first < digits.length() and digits[first] == "0":
			first += 1
		return digits.substr(first)

	## -1, 0 or 1 comparing digit strings without signs or leading zeros.
	static func compare_digits(a: String, b: String) -> int:
		if a.length() != b.length():
			return -1 if a.length() < b.length() else 1
		if a == b:
			return 0
		return -1 if a < b else 1

	static func compare_signed(a: String, b: String) -> int:
		var a_negative := a.begins_with("-")
		var b_negative := b.begins_with("-")
		if a_negative != b_negative:
			return -1 if a_negative else 1
		var c := compare_digits(a.trim_prefix("-"), b.trim_prefix("-"))
		return -c if a_negative else c

	## The decimal digits of `n * 2^scale` (scale >= 0) or of `n * 5^-scale` (scale < 0, the
	## digits of `n * 2^scale` times 10^-scale); `n` >= 0.
	@warning_ignore("integer_division")
	static func scaled_digits(n: int, scale: int) -> String:
		var limbs: Array[int] = [n % LIMB, n / LIMB % LIMB, n / LIMB / LIMB]
		var factor := 2 if scale >= 0 else 5
		var times := absi(scale)
		while times > 0:
			var step := mini(times, 29 if factor == 2 else 12)
			var multiplier := 1
			for _i in step:
				multiplier *= factor
			var carry := 0
			for i in limbs.size():
				var product := limbs[i] * multiplier + carry
				limbs[i] = product % LIMB
				carry = product / LIMB
			while carry > 0:
				limbs.append(carry % LIMB)
				carry = carry / LIMB
			times -= step
		var out := ""
		for i in range(limbs.size() - 1, -1, -1):
			out += Text.pad(limbs[i], 9)
		var digits := strip_zeros(out)
		return "0" if digits == "" else digits

	## `[negative, mantissa, exponent]`: `x` is `mantissa * 2^exponent`, its neighbours' halfway
	## points at `(mantissa*4 - low_gap) * 2^(exponent-2)` and `(mantissa*4 + 2) * 2^(exponent-2)`.
	static func decompose(x: float) -> Array[int]:
		var bytes := PackedByteArray()
		bytes.resize(8)
		bytes.encode_double(0, x)
		var bits := bytes.decode_s64(0)
		var biased := (bits >> 52) & 0x7FF
		var fraction := bits & 0xFFFFFFFFFFFFF
		if biased == 0:
			return [1 if bits < 0 else 0, fraction, -1074]
		return [1 if bits < 0 else 0, fraction | 0x10000000000000, biased - 1075]

	## The shortest decimal that reads back as `x`, written as JavaScript writes numbers
	## (`JSON.stringify`): "1.5", "100", "1e+21", "1.5e-7"; "null" when not finite.
	static func number_text(x: float) -> String:
		if is_nan(x) or is_inf(x):
			return "null"
		if x == 0.0:
			return "0"
		var parts := decompose(x)
		var mantissa := parts[1]
		var scale := parts[2] - 2
		var low_gap := 1 if mantissa == 0x10000000000000 and parts[2] > -1074 else 2
		var exact := scaled_digits(mantissa * 4, scale)
		var low := scaled_digits(mantissa * 4 - low_gap, scale)
		var high := scaled_digits(mantissa * 4 + 2, scale)
		var even := mantissa % 2 == 0
		var best := exact
		for precision in range(1, 18):
			var candidate := round_digits(exact, precision)
			var above := compare_digits(candidate, low)
			var below := compare_digits(candidate, high)
			if (above > 0 or (above == 0 and even)) and (below < 0 or (below == 0 and even)):
				best = candidate
				break
		# best is an integer at 10^min(scale, 0): its significant digits and the point's place.
		var point := best.length() + mini(scale, 0)
		var significant := best
		while significant.ends_with("0"):
			significant = significant.substr(0, significant.length() - 1)
		var sign := "-" if parts[0] == 1 else ""
		return sign + js_number(significant, point)

	## `digits` rounded half-even to `precision` significant digits, zeros kept in place (one
	## more digit when rounding carries).
	static func round_digits(digits: String, precision: int) -> String:
		if digits.length() <= precision:
			return digits
		var kept := digits.substr(0, precision)
		var rest := digits.substr(precision)
		var first := rest.unicode_at(0) - 48
		var beyond := strip_zeros(rest.substr(1)) != ""
		var last_odd := (kept.unicode_at(precision - 1) - 48) % 2 == 1
		if first > 5 or (first == 5 and (beyond or last_odd)):
			kept = increment(kept)
		return kept + "0".repeat(rest.length())

	static func increment(digits: String) -> String:
		var out := ""
		var carry := true
		for i in range(digits.length() - 1, -1, -1):
			var d := digits.unicode_at(i) - 48 + (1 if carry else 0)
			carry = d == 10
			out = str(d % 10) + out
		return "1" + out if carry else out

	## JavaScript's Number::toString for the digits `significant` with the point after `point`
	## of them (0.ddd × 10^point).
	static func js_number(significant: String, point: int) -> String:
		var k := significant.length()
		if k <= point and point <= 21:
			return significant + "0".repeat(point - k)
		if 0 < point and point <= 21:
			return significant.substr(0, point) + "." + significant.substr(point)
		if -6 < point and point <= 0:
			return "0." + "0".repeat(-point) + significant
		var e := point - 1
		var exponent := ("e+" if e >= 0 else "e-") + str(absi(e))
		if k == 1:
			return significant + exponent
		return significant.substr(0, 1) + "." + significant.substr(1) + exponent

	## A JSON number's text as the nearest double (as JavaScript's `Number(text)`): Godot's own
	## reading, corrected by exact comparison when it is off.
	static func to_double(text: String) -> float:
		return nearest_double(text, text.to_float())

	static func nearest_double(text: String, guess: float) -> float:
		var exact := _exact(text)
		if is_nan(guess) or exact[0] == "0":
			return guess
		# Godot may read the largest doubles as infinity and the smallest as 0: start from the
		# nearest finite non-zero double, step past it if need be.
		var x := absf(guess)
		if is_inf(guess) or guess == 0.0:
			x = 1.7976931348623157e308 if is_inf(guess) else 5e-324
		for _round in 8:
			if is_inf(x) or x == 0.0:
				break
			var parts := decompose(x)
			var scale := parts[2] - 2
			var low_gap := 1 if parts[1] == 0x10000000000000 and parts[2] > -1074 else 2
			var power := mini(exact[1], mini(scale, 0))
			var value := _at_power(exact, power)
			var low := _at_power([scaled_digits(parts[1] * 4 - low_gap, scale), mini(scale, 0)], power)
			var high := _at_power([scaled_digits(parts[1] * 4 + 2, scale), mini(scale, 0)], power)
			var above := compare_digits(value, low)
			var below := compare_digits(value, high)
			var even := parts[1] % 2 == 0
			if above < 0 or (above == 0 and not even):
				x = step(x, -1)
			elif below > 0 or (below == 0 and not even):
				x = step(x, 1)
			else:
				break
		return -x if text.begins_with("-") else x

	## `[digits, power]`: the number `text` spells (its absolute value) as digits × 10^power.
	static func _exact(text: String) -> Array:
		var body := text.trim_prefix("-")
		var exponent := 0
		var e := body.findn("e")
		if e >= 0:
			exponent = body.substr(e + 1).to_int()
			body = body.substr(0, e)
		var dot := body.find(".")
		if dot >= 0:
			exponent -= body.length() - dot - 1
			body = body.replace(".", "")
		var digits := strip_zeros(body)
		return ["0" if digits == "" else digits, exponent]

	## Digits × 10^power (a pair) written at the lower power `to` (zeros appended).
	static func _at_power(pair: Array, to: int) -> String:
		if pair[0] == "0":
			return "0"
		return pair[0] + "0".repeat(pair[1] - to)

	## The next double above (`direction` 1) or below (-1) a finite positive `x`.
	static func step(x: float, direction: int) -> float:
		var bytes := PackedByteArray()
		bytes.resize(8)
		bytes.encode_double(0, x)
		bytes.encode_s64(0, bytes.decode_s64(0) + direction)
		return bytes.decode_double(0)


## A JSON number with the digits it was written with.
class JsonNumber:
	extends RefCounted

	var text: String

	func _init(number_text: String) -> void:
		text = number_text


## What a module's `decode` returns: the event, or an error (empty on success) when the body
## cannot be expressed with the contract's types (then `event` is empty).
class Decoded:
	extends RefCounted

	var event: Dictionary = {}
	var error: String = ""

	func _init(decoded_event: Dictionary, decode_error: String) -> void:
		event = {} if decode_error != "" else decoded_event
		error = decode_error


## Parses JSON exactly (numbers keep their text as JsonNumber, objects are Dictionaries in key
## order, a duplicate key is an error) and reads it into the client's types. GDScript has no
## exceptions: the first failure is kept in `error` and every later read returns null. Readers
## are `func(value: Variant) -> Variant` Callables (`d.string`, `d.timestamp.bind(FORMAT_0)`).
class Decoder:
	extends RefCounted

	## Deeper documents are refused (Godot's call stack holds 1024 GDScript calls).
	const MAX_DEPTH := 128

	var error: String = ""
	var _text: String = ""
	var _at: int = 0

	## A JSON document, or null with `error` set.
	func parse(text: String) -> Variant:
		_text = text
		_at = 0
		var value: Variant = _value(0)
		_ws()
		if error == "" and _at != _text.length():
			_syntax("trailing characters")
		return null if error != "" else value

	## The result of a module's `decode`.
	func finish(event: Dictionary) -> Decoded:
		return Decoded.new(event, error)

	## An object whose keys are all in `allowed` (null: any key, the contract drops unknown ones).
	func object(value: Variant, allowed: Variant) -> Dictionary:
		if error != "":
			return {}
		if not value is Dictionary:
			_expected("object", value)
			return {}
		if allowed != null:
			for key in value:
				if not (allowed as Array).has(key):
					fail(Text.quote(key) + " is not a field here")
					return {}
		return value

	func required(value: Variant, reader: Callable) -> Variant:
		if error != "":
			return null
		if value == null:
			_expected("a value", value)
			return null
		return reader.call(value)

	func optional(value: Variant, reader: Callable) -> Variant:
		if error != "" or value == null:
			return null
		return reader.call(value)

	func nullable(value: Variant, reader: Callable) -> Variant:
		if error != "" or value == null:
			return null
		return reader.call(value)

	func string(value: Variant) -> Variant:
		return value if value is String else _expected("string", value)

	func boolean(value: Variant) -> Variant:
		return value if value is bool else _expected("boolean", value)

	func number(value: Variant) -> Variant:
		return Numbers.to_double(value.text) if value is JsonNumber else _expected("number", value)

	## An integral number: an int, or a float when it is beyond 64 bits (`check_integer` then
	## reports it out of range).
	func integer(value: Variant) -> Variant:
		if not value is JsonNumber:
			return _expected("number", value)
		var text: String = value.text
		if text.find(".") < 0 and text.findn("e") < 0:
			var n: Variant = Decoder.exact_int(text)
			if n != null:
				return n
		var x := Numbers.to_double(text)
		if x != floorf(x):
			return _expected("integer", value)
		if absf(x) < 9.223372036854775807e18:
			return int(x)
		return x

	func long(value: Variant) -> Variant:
		return integer(value)

	## The text of a number (or of a string) as written: `check_decimal` reads it.
	func decimal(value: Variant) -> Variant:
		if value is JsonNumber:
			return value.text
		return value if value is String else _expected("number or numeric string", value)

	## A `timestamp` in the contract's format: microseconds of its wall clock read as UTC.
	func timestamp(value: Variant, items: Array) -> Variant:
		var text: Variant = string(value)
		if text == null:
			return null
		var micros: Variant = Clock.parse(text, items)
		if micros == null:
			fail("not a timestamp in the contract's format")
		return micros

	## A `timestamptz` (RFC 3339): microseconds since the epoch, UTC.
	func timestamptz(value: Variant) -> Variant:
		var text: Variant = string(value)
		if text == null:
			return null
		var micros: Variant = Clock.parse_rfc3339(text)
		if micros == null:
			fail("not an RFC 3339 timestamp")
		return micros

	func list(value: Variant, reader: Callable) -> Variant:
		if error != "":
			return null
		if not value is Array:
			return _expected("array", value)
		var out := []
		for item in value:
			out.append(reader.call(item))
		return out

	func map(value: Variant, reader: Callable) -> Variant:
		if error != "":
			return null
		if not value is Dictionary:
			return _expected("object", value)
		var out := {}
		for key in value:
			out[key] = reader.call(value[key])
		return out

	## The JSON kind of a value, as messages name it.
	static func kind(value: Variant) -> String:
		if value == null:
			return "null"
		var names := {
			TYPE_BOOL: "boolean",
			TYPE_INT: "number",
			TYPE_FLOAT: "number",
			TYPE_STRING: "string",
			TYPE_ARRAY: "array",
			TYPE_DICTIONARY: "object",
		}
		if value is JsonNumber:
			return "number"
		return names.get(typeof(value), type_string(typeof(value)))

	## The int a JSON integer's text spells, or null beyond 64 bits.
	@warning_ignore("integer_division")
	static func exact_int(text: String) -> Variant:
		var negative := text.begins_with("-")
		var value := 0
		for i in range(1 if negative else 0, text.length()):
			var d := text.unicode_at(i) - 48
			# value stays <= 0 so LONG_MIN fits: compare before multiplying.
			if value < (LONG_MIN + d) / 10:
				return null
			value = value * 10 - d
		if negative:
			return value
		return null if value == LONG_MIN else -value

	func _expected(what: String, value: Variant) -> Variant:
		fail("expected " + what + ", found " + Decoder.kind(value))
		return null

	## Records why the body cannot be an event (unless a first error is recorded): a module's
	## `decode` says "unknown <discriminator> ..." for an unknown variant.
	func fail(message: String) -> void:
		if error == "":
			error = message

	func _syntax(what: String) -> void:
		fail("invalid JSON at " + str(_at) + ": " + what)

	func _ws() -> void:
		while _at < _text.length():
			var c := _text.unicode_at(_at)
			if c != 32 and c != 9 and c != 10 and c != 13:
				return
			_at += 1

	func _value(depth: int) -> Variant:
		_ws()
		if error == "" and (depth > MAX_DEPTH or _at >= _text.length()):
			_syntax("nested too deeply" if depth > MAX_DEPTH else "expected a value")
		if error != "":
			return null
		var c := _text.unicode_at(_at)
		if c == 123 or c == 91:
			return _object(depth) if c == 123 else _array(depth)
		if c == 34:
			return _string()
		for word in ["true", "false", "null"]:
			if _text.substr(_at, word.length()) == word:
				_at += word.length()
				return {"true": true, "false": false, "null": null}[word]
		return _number()

	func _object(depth: int) -> Variant:
		_at += 1
		var out := {}
		_ws()
		if _at < _text.length() and _text[_at] == "}":
			_at += 1
			return out
		while error == "":
			_ws()
			if _at >= _text.length() or _text[_at] != "\"":
				_syntax("expected a key")
				break
			var key: Variant = _string()
			if error == "" and out.has(key):
				fail("duplicate key " + Text.quote(key))
			_ws()
			if error == "" and (_at >= _text.length() or _text[_at] != ":"):
				_syntax("expected ':'")
			_at += 1
			var item: Variant = _value(depth + 1)
			if error != "":
				break
			out[key] = item
			_ws()
			if _at < _text.length() and _text[_at] == "}":
				_at += 1
				return out
			if _at >= _text.length() or _text[_at] != ",":
				_syntax("expected ',' or '}'")
			_at += 1
		return null

	func _array(depth: int) -> Variant:
		_at += 1
		var out := []
		_ws()
		if _at < _text.length() and _text[_at] == "]":
			_at += 1
			return out
		while error == "":
			var item: Variant = _value(depth + 1)
			if error != "":
				break
			out.append(item)
			_ws()
			if _at < _text.length() and _text[_at] == "]":
				_at += 1
				return out
			if _at >= _text.length() or _text[_at] != ",":
				_syntax("expected ',' or ']'")
			_at += 1
		return null

	## `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
	func _number() -> Variant:
		var start := _at
		if _at < _text.length() and _text[_at] == "-":
			_at += 1
		var first := _at
		_at = _skip_digits(_at)
		var length := _at - first
		if length == 0 or (length > 1 and _text[first] == "0"):
			_at = start
			_syntax("expected a value")
			return null
		if _at < _text.length() and _text[_at] == ".":
			var after := _skip_digits(_at + 1)
			if after == _at + 1:
				_syntax("expected a digit")
				return null
			_at = after
		if _at < _text.length() and (_text[_at] == "e" or _text[_at] == "E"):
			var at := _at + 1
			if at < _text.length() and (_text[at] == "+" or _text[at] == "-"):
				at += 1
			var after := _skip_digits(at)
			if after == at:
				_syntax("expected a digit")
				return null
			_at = after
		return JsonNumber.new(_text.substr(start, _at - start))

	func _skip_digits(from: int) -> int:
		var at := from
		while at < _text.length() and Text.is_digit(_text.unicode_at(at)):
			at += 1
		return at

	func _string() -> Variant:
		_at += 1
		var out := ""
		while _at < _text.length():
			var c := _text.unicode_at(_at)
			if c == 34:
				_at += 1
				return out
			if c < 32:
				break
			if c != 92:
				out += _text[_at]
				_at += 1
				continue
			var code := _escape()
			if code < 0:
				break
			out += String.chr(code)
		_syntax("bad string")
		return null

	## The character an escape at `_at` stands for (a surrogate pair joined), or -1.
	func _escape() -> int:
		var e := _text.substr(_at + 1, 1)
		var simple := {"\"": 34, "\\": 92, "/": 47, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9}
		if simple.has(e):
			_at += 2
			return simple[e]
		var code := _hex4(_at + 2) if e == "u" else -1
		if code < 0:
			return -1
		_at += 6
		if code >= 0xD800 and code <= 0xDBFF and _text.substr(_at, 2) == "\\u":
			var low := _hex4(_at + 2)
			if low >= 0xDC00 and low <= 0xDFFF:
				_at += 6
				return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
		# A lone surrogate cannot be a Godot character: the replacement character stands in.
		return 0xFFFD if code >= 0xD800 and code <= 0xDFFF else code

	func _hex4(at: int) -> int:
		var text := _text.substr(at, 4)
		return text.hex_to_int() if text.length() == 4 and text.is_valid_hex_number() else -1


## Writers of JSON text, as the TypeScript runtime's `write` writes it.
static func write_string(value: String) -> String:
	return Text.quote(value)


static func write_boolean(value: bool) -> String:
	return "true" if value else "false"


## A double as JavaScript writes it: the shortest text that reads back as the same double.
static func write_number(value: float) -> String:
	return Numbers.number_text(value)


## An int (a float beyond 64 bits, as `Decoder.integer` gives it, is written as a number).
static func write_long(value: Variant) -> String:
	return str(value) if value is int else Numbers.number_text(value)


## A `timestamp` (wall-clock microseconds) in the contract's format.
static func write_timestamp(micros: int, items: Array) -> String:
	return Text.quote(Clock.format(micros, items))


## A `timestamptz` (microseconds UTC) as RFC 3339 in UTC: `2024-02-22T10:56:00.000Z`.
static func write_timestamptz(micros: int) -> String:
	return Text.quote(Clock.format_rfc3339(micros))


static func write_list(values: Array, writer: Callable) -> String:
	var parts := PackedStringArray()
	for value in values:
		parts.append("null" if value == null else writer.call(value))
	return "[" + ",".join(parts) + "]"


static func write_map(values: Dictionary, writer: Callable) -> String:
	var parts := PackedStringArray()
	for key in values:
		var value: Variant = values[key]
		parts.append(Text.quote(key) + ":" + ("null" if value == null else writer.call(value)))
	return "{" + ",".join(parts) + "}"


## An object from `"key":value` members (a module's encoders build these).
static func write_object(members: PackedStringArray) -> String:
	return "{" + ",".join(members) + "}"


## Sends one contract's events (docs/clients.md, "What every client does"): validates each locally
## (an event the server would reject is refused and never sent), signs in with the game's token
## provider or as a guest (the identity kept in `state_dir`), refreshes the token before it
## expires, retries network errors, 5xx and 429 with exponential backoff and jitter, and keeps a
## bounded persistent queue (a journal file) flushed in batches. An HTTPRequest is a Node: add the
## client to the scene tree (`add_child(client)`) before sending. Every call is a coroutine
## (`await client.send(event)`) returning a Dictionary whose `error` is empty on success.
class ContractClient:
	extends Node

	## Emitted when a flush ends, with its result (a second `flush` meanwhile waits for it).
	signal flushed(result: Dictionary)

	## The most events one batch request carries: Kinesis `PutRecords` takes 500.
	const MAX_EVENTS_PER_BATCH_REQUEST := 500
	## The most bytes of JSON array one batch request carries, unless one event is larger.
	const MAX_BATCH_REQUEST_BYTES := 3000000

	## The game's own sign-in, used instead of the guest login when set:
	## `func(force_refresh: bool) -> Dictionary` giving `{"token": String, "expires_at_unix":
	## float}` (no `expires_at_unix`: kept until a 401); it may be a coroutine. `force_refresh` is
	## true after the server refused the last token. A provider that gives no token is retried as
	## a network error is (events stay queued).
	var token_provider: Callable
	## Replaces HTTPRequest (tests, custom stacks): `func(method: String, url: String, headers:
	## PackedStringArray, body: String) -> Dictionary` giving `{"status": int, "body": String}`
	## (status 0 and `"error"` for a network error); it may be a coroutine.
	var transport: Callable
	## `{name, version, route, batch_route, max_body_bytes, max_batch_events}` (a module's CONTRACT).
	var contract: Dictionary
	## Events dropped because the queue was full.
	var dropped: int = 0
	var _validate: Callable
	var _encode: Callable
	var _options: Dictionary
	var _tokens: Dictionary = {}
	var _provided: Dictionary = {}
	var _force_refresh: bool = false
	## `[id, body]` of each queued event, oldest first.
	var _items: Array = []
	var _next_id: int = 0
	var _flushing: bool = false

	## `options`: `base_url` (ending in `/`), and optionally `login_base_url`, `state_dir`
	## ("user://contractc"), `max_queued_events` (1000), `max_attempts` (5), `timeout_ms` (30000),
	## `base_backoff_ms` (200), `max_backoff_ms` (10000), `refresh_margin_seconds` (60),
	## `login_query` (Dictionary), `token_provider`, `transport`; for tests `now_ms`, `random`,
	## `sleep` (Callables).
	func _init(info: Dictionary, validate: Callable, encode: Callable, options: Dictionary) -> void:
		contract = info
		_validate = validate
		_encode = encode
		_options = options
		token_provider = options.get("token_provider", Callable())
		transport = options.get("transport", Callable())
		DirAccess.make_dir_recursive_absolute(_state_dir())
		var saved: Variant = _read_json("tokens.json")
		if saved is Dictionary and saved.get("auth_token") is String:
			_tokens = saved
			for key in ["auth_expires_at", "refresh_expires_at"]:
				var at: Variant = saved.get(key)
				_tokens[key] = Decoder.exact_int(at.text) if at is JsonNumber else 0
			if _tokens["auth_expires_at"] == null or _tokens["refresh_expires_at"] == null:
				_tokens = {}
		_load_queue()

	## The guest's `user_id` once logged in, else "".
	func user_id() -> String:
		var saved: Variant = _read_json("identity.json")
		return saved.get("user_id", "") if saved is Dictionary else ""

	func queued() -> int:
		return _items.size()

	## The violations of an event, as the server would report them.
	func check(event: Dictionary) -> Array[Dictionary]:
		return _validate.call(event, _now_ms() * 1000)

	## Sends one event now (single route): `{status, body, error, violations}`; an event with a
	## `reject` violation is not sent (status 0).
	func send(event: Dictionary) -> Dictionary:
		var violations := check(event)
		if _rejects(violations):
			return {"status": 0, "body": null, "error": _refusal(violations), "violations": violations}
		var answer := await _post(contract["route"], _encode.call(event))
		answer["violations"] = violations
		return answer

	## Sends events now to the batch route in JSON arrays within the contract's limits. The
	## result counts `sent`, `accepted`, `quarantined`, `rejected`, `added`, `failed`, and has one
	## `{outcome, error}` per event in `results`; `error` is set when some event was not
	## acknowledged (events of later requests are `failed` with "not sent").
	func send_batch(events: Array) -> Dictionary:
		var result := {"sent": 0, "accepted": 0, "quarantined": 0, "rejected": 0, "added": 0}
		result.merge({"failed": 0, "results": [], "error": ""})
		var bodies: Array = []
		for event in events:
			var violations := check(event)
			if _rejects(violations):
				result["error"] = _refusal(violations)
				return result
			bodies.append(_encode.call(event))
		var start := 0
		while start < bodies.size():
			var chunk := bodies.slice(start, start + _batch_length(bodies.slice(start)))
			start += chunk.size()
			if result["error"] != "":
				for _body in chunk:
					result["failed"] += 1
					result["results"].append({"outcome": "failed", "error": "not sent"})
				continue
			var delivery := await _deliver(chunk, Callable())
			for r in delivery["results"]:
				ContractClient.tally(result, r["outcome"])
				if r["outcome"] == "failed":
					result["failed"] += 1
				result["results"].append(r)
			result["error"] = delivery["error"]
		return result

	## Validates and queues an event (in the journal when this returns): its violations. An event
	## with a `reject` violation is not queued. When the queue is full the oldest is dropped.
	func enqueue(event: Dictionary) -> Array[Dictionary]:
		var violations := check(event)
		if _rejects(violations):
			return violations
		var id := _next_id
		_next_id += 1
		_items.append([id, _encode.call(event)])
		var record := "+" + str(id) + " " + _items[-1][1] + "\n"
		while _items.size() > int(_options.get("max_queued_events", 1000)):
			record += "-" + str(_items[0][0]) + "\nd\n"
			_items.pop_front()
			dropped += 1
		_append(record)
		return violations

	## Sends the queue in batches; an event leaves it once an answer acknowledged it. The result
	## counts `sent`, `accepted`, `quarantined`, `rejected`, `added` and `remaining`; `error` is
	## the last failure when some event is still queued.
	func flush() -> Dictionary:
		var result := {"sent": 0, "accepted": 0, "quarantined": 0, "rejected": 0, "added": 0}
		result.merge({"remaining": 0, "error": ""})
		if _flushing:
			return await flushed
		_flushing = true
		while not _items.is_empty():
			var bodies := _items.map(func(item: Array) -> String: return item[1])
			var batch := _items.slice(0, _batch_length(bodies))
			var delivery := await _deliver(bodies.slice(0, batch.size()), _remove.bind(batch))
			for r in delivery["results"]:
				ContractClient.tally(result, r["outcome"])
			if delivery["error"] != "":
				result["error"] = delivery["error"]
				break
		_compact()
		result["remaining"] = _items.size()
		_flushing = false
		flushed.emit(result)
		return result

	## Flushes before quitting; what is not sent stays queued for the next session.
	func close() -> Dictionary:
		return await flush()

	## Logs in as a guest (the saved guest if there is one, else a new one whose identity is
	## kept): `{token, error, status}`.
	func login() -> Dictionary:
		var query := PackedStringArray()
		var extra: Dictionary = _options.get("login_query", {})
		for key in extra:
			query.append(str(key).uri_encode() + "=" + str(extra[key]).uri_encode())
		var saved: Variant = _read_json("identity.json")
		if saved is Dictionary:
			query.append("user_id=" + str(saved.get("user_id", "")).uri_encode())
			query.append("guest_secret=" + str(saved.get("guest_secret", "")).uri_encode())
		var url := _login_url("login-as-guest") + ("" if query.is_empty() else "?" + "&".join(query))
		var answer := await _with_retry("GET", url, "", "")
		if answer["status"] != 200:
			return {"token": "", "status": answer["status"], "error": ContractClient.why(answer)}
		var body: Variant = answer["body"]
		if body is Dictionary and body.get("user_id") is String and body.get("guest_secret") is String:
			var identity := {"user_id": body["user_id"], "guest_secret": body["guest_secret"]}
			_write_file("identity.json", ContractClient.to_json(identity))
		return _accept_tokens(body, "")

	## Counts one event's outcome.
	static func tally(result: Dictionary, outcome: String) -> void:
		if outcome != "failed":
			result["sent"] += 1
			result[outcome] += 1

	## Why an answer failed: the network error, or `HTTP <status>: <body>`.
	static func why(answer: Dictionary) -> String:
		if answer["status"] == 0:
			return answer.get("error", "network error")
		var body: Variant = answer["body"]
		var text: String = body if body is String else ContractClient.to_json(body)
		return "HTTP " + str(answer["status"]) + ": " + text

	## A parsed answer (Dictionaries, Arrays, JsonNumber...) written back as JSON.
	static func to_json(value: Variant) -> String:
		if value is Dictionary:
			var members := PackedStringArray()
			for key in value:
				members.append(Text.quote(str(key)) + ":" + ContractClient.to_json(value[key]))
			return "{" + ",".join(members) + "}"
		if value is Array:
			var items := PackedStringArray()
			for item in value:
				items.append(ContractClient.to_json(item))
			return "[" + ",".join(items) + "]"
		if value is JsonNumber:
			return value.text
		if value is String:
			return Text.quote(value)
		return "null" if value == null else str(value)

	## One result per event of a batch request (`count` of them) from either server's answer:
	## `serve`'s `{"results": [{"index", "verdict"}]}` or the deployed API's `{"results":
	## [{"index", "result": "added" | "failed", "error", "message"}]}`; null when it has none.
	static func read_batch_results(body: Variant, count: int) -> Variant:
		if not body is Dictionary or not body.get("results") is Array:
			return null
		var entries: Array = body["results"]
		if entries.size() != count:
			return null
		var out: Array = []
		out.resize(count)
		var verdicts := {"accept": "accepted", "quarantine": "quarantined", "reject": "rejected"}
		for position in count:
			var e: Variant = entries[position]
			var entry: Dictionary = e if e is Dictionary else {}
			var index := position
			var given: Variant = entry.get("index")
			if given is JsonNumber and Decoder.exact_int(given.text) != null:
				index = Decoder.exact_int(given.text)
			if index < 0 or index >= count or out[index] != null:
				return null
			var verdict: Variant = entry.get("verdict")
			var outcome: Variant = entry.get("result")
			if verdict is String and verdicts.has(verdict):
				out[index] = {"outcome": verdicts[verdict]}
			elif outcome is String and outcome == "added":
				out[index] = {"outcome": "added"}
			elif outcome is String and outcome == "failed":
				var code := ContractClient.text_of(entry.get("error"))
				var message := ContractClient.text_of(entry.get("message"))
				out[index] = {"outcome": "failed", "error": code + ": " + message}
			else:
				return null
		return out

	static func text_of(value: Variant) -> String:
		if value == null:
			return ""
		return value if value is String else ContractClient.to_json(value)

	func _rejects(violations: Array[Dictionary]) -> bool:
		return violations.any(func(v: Dictionary) -> bool: return v["policy"] == "reject")

	func _refusal(violations: Array[Dictionary]) -> String:
		var parts := PackedStringArray()
		for v in violations:
			parts.append(v["path"] + ": " + v["code"] + ": " + v["message"])
		return "contract violation: " + "; ".join(parts)

	## How many of `bodies` the next batch request carries: at most the contract's
	## `max_batch_events` (and 500), and no more bytes than 3 MB or `max_body_bytes ×
	## max_batch_events` of JSON array (always at least one event).
	func _batch_length(bodies: Array) -> int:
		var limit := int(contract["max_batch_events"])
		var events := maxi(1, mini(limit, MAX_EVENTS_PER_BATCH_REQUEST))
		var max_bytes := mini(MAX_BATCH_REQUEST_BYTES, int(contract["max_body_bytes"]) * events)
		var size := 1
		var n := 0
		for body in bodies:
			if n >= events:
				break
			var next: int = size + (body as String).to_utf8_buffer().size() + 1
			if n > 0 and next > max_bytes:
				break
			size = next
			n += 1
		return n

	## Sends `bodies` as one JSON array, then what is not acknowledged yet, until every event is
	## or the attempts run out: a network error or a 5xx without per-event results is retried
	## whole, the events of a failed record alone, with backoff; a 4xx stops (a 401 first signs
	## in again once). `acknowledged` (when valid) gets the indexes of each answer's acknowledged
	## events as it comes in. `{results, error}`: error empty when every event was acknowledged.
	func _deliver(bodies: Array, acknowledged: Callable) -> Dictionary:
		var results: Array = []
		var pending: Array = []
		for i in bodies.size():
			results.append({"outcome": "failed"})
			pending.append(i)
		var attempts := int(_options.get("max_attempts", 5))
		var reauthenticated := false
		var failure := ""
		var attempt := 1
		while true:
			var token := await _token()
			var answer: Dictionary = {}
			if token["error"] == "":
				var chosen := PackedStringArray(pending.map(func(i: int) -> String: return bodies[i]))
				var array := "[" + ",".join(chosen) + "]"
				answer = await _request("POST", _url(contract["batch_route"]), token["token"], array)
			else:
				failure = token["error"]
				if token["status"] != 0:
					break
			if not answer.is_empty() and answer["status"] == 401 and not reauthenticated:
				reauthenticated = true
				_forget_token()
				continue
			if not answer.is_empty():
				failure = ContractClient.why(answer)
				if answer["status"] != 200 and answer["status"] != 429 and answer["status"] < 500:
					break
			var read: Variant = null
			if not answer.is_empty() and answer["status"] != 0:
				read = ContractClient.read_batch_results(answer["body"], pending.size())
				if read == null and answer["status"] == 200:
					read = pending.map(func(_i: int) -> Dictionary: return {"outcome": "added"})
			if read != null:
				var done: Array = []
				var still: Array = []
				for k in read.size():
					results[pending[k]] = read[k]
					(still if read[k]["outcome"] == "failed" else done).append(pending[k])
				if not done.is_empty() and acknowledged.is_valid():
					acknowledged.call(done)
				pending = still
			if pending.is_empty():
				return {"results": results, "error": ""}
			if attempt >= attempts:
				break
			await _sleep(_backoff_ms(attempt))
			attempt += 1
		for i in pending:
			results[i] = {"outcome": "failed", "error": results[i].get("error", failure)}
		return {"results": results, "error": failure}

	## Removes the acknowledged events (indexes into `batch`) from the queue and the journal.
	func _remove(done: Array, batch: Array) -> void:
		var record := ""
		for k in done:
			var id: int = batch[k][0]
			record += "-" + str(id) + "\n"
			_items = _items.filter(func(item: Array) -> bool: return item[0] != id)
		_append(record)

	## One request with retries on network errors, 5xx and 429; a 401 signs in again once.
	func _post(route: String, body: String) -> Dictionary:
		var reauthenticated := false
		while true:
			var token := await _token()
			if token["error"] != "":
				return {"status": token["status"], "body": null, "error": token["error"]}
			var answer := await _with_retry("POST", _url(route), token["token"], body)
			if answer["status"] == 401 and not reauthenticated:
				reauthenticated = true
				_forget_token()
				continue
			answer["error"] = "" if answer["status"] == 200 else ContractClient.why(answer)
			return answer
		return {}

	## Retries network errors, 5xx and 429 with backoff: the last answer.
	func _with_retry(method: String, url: String, token: String, body: String) -> Dictionary:
		var attempts := int(_options.get("max_attempts", 5))
		var attempt := 1
		while true:
			var answer := await _request(method, url, token, body)
			var status: int = answer["status"]
			if (status != 0 and status < 500 and status != 429) or attempt >= attempts:
				return answer
			await _sleep(_backoff_ms(attempt))
			attempt += 1
		return {}

	## One request, no retry: `{status, body, error}` (the body parsed when it is JSON, else its
	## text; status 0 for a network error).
	func _request(method: String, url: String, token: String, body: String) -> Dictionary:
		var headers := PackedStringArray(["X-Contract-Version: " + contract["version"]])
		if token != "":
			headers.append("Authorization: " + token)
		if method == "POST":
			headers.append("Content-Type: application/json")
		var raw: Dictionary
		if transport.is_valid():
			raw = await transport.call(method, url, headers, body)
		else:
			raw = await _http(method, url, headers, body)
		if int(raw.get("status", 0)) == 0:
			return {"status": 0, "body": null, "error": raw.get("error", "network error")}
		var text: String = raw.get("body", "")
		var decoder := Decoder.new()
		var parsed: Variant = decoder.parse(text)
		var answer_body: Variant = text if decoder.error != "" else parsed
		return {"status": int(raw["status"]), "body": answer_body, "error": ""}

	## The request through an HTTPRequest child node (abandoned after `timeout_ms`).
	func _http(method: String, url: String, headers: PackedStringArray, body: String) -> Dictionary:
		var http := HTTPRequest.new()
		http.timeout = float(_options.get("timeout_ms", 30000)) / 1000.0
		add_child(http)
		var verb := HTTPClient.METHOD_POST if method == "POST" else HTTPClient.METHOD_GET
		var started := http.request(url, headers, verb, body)
		if started != OK:
			http.queue_free()
			return {"status": 0, "error": "cannot send: " + error_string(started)}
		var done: Array = await http.request_completed
		http.queue_free()
		if done[0] != HTTPRequest.RESULT_SUCCESS:
			return {"status": 0, "error": "network error (HTTPRequest result " + str(done[0]) + ")"}
		return {"status": done[1], "body": (done[3] as PackedByteArray).get_string_from_utf8()}

	## The wait before attempt `attempt + 1`: full jitter under a doubling ceiling.
	func _backoff_ms(attempt: int) -> int:
		var base := float(_options.get("base_backoff_ms", 200))
		var ceiling := minf(float(_options.get("max_backoff_ms", 10000)), base * pow(2.0, attempt - 1))
		var random: Callable = _options.get("random", Callable())
		return int(floor((random.call() if random.is_valid() else randf()) * ceiling))

	func _sleep(ms: int) -> void:
		var sleep: Callable = _options.get("sleep", Callable())
		if sleep.is_valid():
			await sleep.call(ms)
		elif ms > 0:
			await get_tree().create_timer(ms / 1000.0).timeout

	func _now_ms() -> int:
		var now: Callable = _options.get("now_ms", Callable())
		return now.call() if now.is_valid() else int(Time.get_unix_time_from_system() * 1000.0)

	## A token valid for at least the refresh margin: `{token, error, status}` (status set when
	## the login was refused: another try would be refused too).
	func _token() -> Dictionary:
		var margin := int(_options.get("refresh_margin_seconds", 60)) * 1000
		var now := _now_ms()
		if token_provider.is_valid():
			return await _provided_token(margin, now)
		if not _tokens.is_empty() and int(_tokens["auth_expires_at"]) - margin > now:
			return {"token": _tokens["auth_token"], "error": "", "status": 0}
		if not _tokens.is_empty() and int(_tokens["refresh_expires_at"]) - margin > now:
			var refreshed := await _refresh(_tokens["refresh_token"])
			if refreshed["error"] == "":
				return refreshed
		return await login()

	## The provider's token while it is not within the margin of its expiry, else a new one.
	func _provided_token(margin: int, now: int) -> Dictionary:
		var held: Variant = _provided.get("expires_at_ms")
		if not _provided.is_empty() and (held == null or held - margin > now):
			return {"token": _provided["token"], "error": "", "status": 0}
		var given: Variant = await token_provider.call(_force_refresh)
		var token: Variant = given.get("token") if given is Dictionary else null
		if not token is String or token == "":
			return {"token": "", "error": "the token provider gave no token", "status": 0}
		# Cleared only once a token came: a provider that failed is forced again next time.
		_force_refresh = false
		var expires: Variant = given.get("expires_at_unix")
		var expires_ms: Variant = null if expires == null else int(float(expires) * 1000.0)
		_provided = {"token": token, "expires_at_ms": expires_ms}
		return {"token": token, "error": "", "status": 0}

	## After a 401: the next request gets a fresh token (the provider forced, or a guest login).
	func _forget_token() -> void:
		_provided = {}
		_force_refresh = true
		if not token_provider.is_valid():
			_tokens = {}
			_write_file("tokens.json", "{}")

	func _refresh(refresh_token: String) -> Dictionary:
		var url := _login_url("refresh-access-token") + "?refresh_token=" + refresh_token.uri_encode()
		var answer := await _with_retry("GET", url, "", "")
		if answer["status"] != 200:
			return {"token": "", "error": ContractClient.why(answer), "status": answer["status"]}
		return _accept_tokens(answer["body"], refresh_token)

	func _accept_tokens(body: Variant, previous_refresh: String) -> Dictionary:
		var given: Dictionary = body if body is Dictionary else {}
		if not given.get("auth_token") is String:
			var refused := "HTTP 200: " + ContractClient.to_json(body)
			return {"token": "", "error": refused, "status": 200}
		var now := _now_ms()
		var refresh: Variant = given.get("refresh_token")
		var auth_in: Variant = given.get("auth_token_expires_in")
		var refresh_in: Variant = given.get("refresh_token_expires_in")
		var refresh_at: int = _tokens.get("refresh_expires_at", 0)
		if refresh_in is JsonNumber:
			refresh_at = now + int(Numbers.to_double(refresh_in.text) * 1000.0)
		var auth_seconds := Numbers.to_double(auth_in.text) if auth_in is JsonNumber else 900.0
		_tokens = {
			"auth_token": given["auth_token"],
			"refresh_token": refresh if refresh is String else previous_refresh,
			"auth_expires_at": now + int(auth_seconds * 1000.0),
			"refresh_expires_at": refresh_at,
		}
		_write_file("tokens.json", ContractClient.to_json(_tokens))
		return {"token": given["auth_token"], "error": "", "status": 0}

	## `route` against the base URL: an absolute path replaces the base's path.
	func _url(route: String) -> String:
		return ContractClient.resolve(_options["base_url"], route)

	func _login_url(path: String) -> String:
		return ContractClient.resolve(_options.get("login_base_url", _options["base_url"]), path)

	static func resolve(base: String, path: String) -> String:
		if path.begins_with("/"):
			var host_end := base.find("/", base.find("://") + 3)
			return (base if host_end < 0 else base.substr(0, host_end)) + path
		return base.substr(0, base.rfind("/") + 1) + path

	func _state_dir() -> String:
		return _options.get("state_dir", "user://contractc")

	func _path(file: String) -> String:
		return _state_dir().path_join("contractc." + contract["name"] + "." + file)

	func _read_json(file: String) -> Variant:
		if not FileAccess.file_exists(_path(file)):
			return null
		return Decoder.new().parse(FileAccess.get_file_as_string(_path(file)))

	## Replaces a file whole: written beside it, then renamed over it.
	func _write_file(file: String, text: String) -> void:
		var f := FileAccess.open(_path(file) + ".tmp", FileAccess.WRITE)
		if f == null:
			push_error("contractc: cannot write " + _path(file))
			return
		f.store_string(text)
		f.close()
		DirAccess.rename_absolute(_path(file) + ".tmp", _path(file))

	## The journal: `+ID JSON` enqueued, `-ID` answered or dropped, `d` one more dropped, `DN`
	## N dropped in all, `nID` the next id. Only lines ended by a newline count: a record torn by
	## a crash is skipped.
	func _load_queue() -> void:
		if not FileAccess.file_exists(_path("queue")):
			return
		var lines := FileAccess.get_file_as_string(_path("queue")).split("\n")
		for k in lines.size() - 1:
			var line := lines[k]
			var tag := line.substr(0, 1)
			if tag == "+" and line.find(" ") > 1:
				var id := line.substr(1, line.find(" ") - 1).to_int()
				_items.append([id, line.substr(line.find(" ") + 1)])
				_next_id = maxi(_next_id, id + 1)
			elif tag == "-":
				var gone := line.substr(1).to_int()
				_items = _items.filter(func(i: Array) -> bool: return i[0] != gone)
			elif tag == "d":
				dropped += 1
			elif tag == "D":
				dropped = line.substr(1).to_int()
			elif tag == "n":
				_next_id = maxi(_next_id, line.substr(1).to_int())
		if lines[-1] != "":
			_compact()

	func _append(record: String) -> void:
		var path := _path("queue")
		var mode := FileAccess.READ_WRITE if FileAccess.file_exists(path) else FileAccess.WRITE
		var f := FileAccess.open(path, mode)
		if f == null:
			push_error("contractc: cannot write " + path)
			return
		f.seek_end()
		f.store_string(record)
		f.flush()
		f.close()

	## Rewrites the journal with only what is queued.
	func _compact() -> void:
		var text := "n" + str(_next_id) + "\nD" + str(dropped) + "\n"
		for item in _items:
			text += "+" + str(item[0]) + " " + item[1] + "\n"
		_write_file("queue", text)

"""Renders an API Gateway mapping template (VTL) with airspeed, the engine LocalStack uses,
for the Rust deploy test: moto stores templates but evaluates none.

Reads one JSON object on stdin: {"template", "body", "headers", "context", "stage_variables",
"report_override"} and prints the rendered text; with "report_override" true, a JSON object
{"body": the rendered text, "status": what the template set `$context.responseOverride.status`
to, or null}. `$util` offers base64Encode and escapeJavaScript (Java's StringEscapeUtils rules,
with `.replaceAll` as Java strings have it); `$input` offers params, body, path and json for
the JSONPath forms the templates use (`$`, `$.a.b`, `$[n]`).
"""

import base64
import json
import re
import sys

import airspeed


class JavaString(str):
    """A string with the Java method templates call on `$util` results."""

    def replaceAll(self, pattern, replacement):  # noqa: N802 (Java's name)
        return JavaString(re.sub(pattern, replacement.replace("\\", "\\\\"), self))


class Util:
    def base64Encode(self, text):  # noqa: N802 (API Gateway's name)
        return base64.b64encode((text or "").encode("utf-8")).decode("ascii")

    def escapeJavaScript(self, text):  # noqa: N802 (API Gateway's name)
        escaped = []
        for ch in text or "":
            if ch in "\"'\\/":
                escaped.append("\\" + ch)
            elif ch == "\n":
                escaped.append("\\n")
            elif ch == "\t":
                escaped.append("\\t")
            elif ch == "\r":
                escaped.append("\\r")
            elif ord(ch) < 32 or ord(ch) > 126:
                escaped.append("\\u%04X" % ord(ch))
            else:
                escaped.append(ch)
        return JavaString("".join(escaped))


class Input:
    def __init__(self, body, headers):
        self.body = body
        self._headers = {k.lower(): v for k, v in headers.items()}

    def path(self, expression):
        """The value at a JSONPath (`$`, `$.a.b`, `$[n]`, combined) of the JSON body."""
        value = json.loads(self.body)
        for name, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]", expression[1:]):
            value = value[name] if name else value[int(index)]
        return value

    def json(self, expression):
        """The value at a JSONPath written back as JSON (compact, as API Gateway writes it)."""
        return json.dumps(self.path(expression), separators=(",", ":"), ensure_ascii=False)

    def params(self, name=None):
        if name is None:
            return {"header": self._headers, "querystring": {}, "path": {}}
        return self._headers.get(name.lower(), "")


def main():
    request = json.load(sys.stdin)
    context = dict(request.get("context", {}))
    context["responseOverride"] = {}
    namespace = {
        "util": Util(),
        "input": Input(request.get("body", ""), request.get("headers", {})),
        "context": context,
        "stageVariables": request.get("stage_variables", {}),
    }
    rendered = airspeed.Template(request["template"]).merge(namespace)
    if request.get("report_override"):
        status = context["responseOverride"].get("status")
        sys.stdout.write(json.dumps({"body": rendered, "status": status}))
    else:
        sys.stdout.write(rendered)


if __name__ == "__main__":
    main()

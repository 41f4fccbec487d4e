"""Renders an API Gateway mapping template (VTL) with airspeed, the engine LocalStack uses,
for the Rust deploy test: moto stores templates but evaluates none.

Reads one JSON object on stdin: {"template", "body", "headers", "context", "stage_variables"}
and prints the rendered text. `$util` offers base64Encode and escapeJavaScript (Java's
StringEscapeUtils rules, with `.replaceAll` as Java strings have it).
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

    def params(self, name=None):
        if name is None:
            return {"header": self._headers, "querystring": {}, "path": {}}
        return self._headers.get(name.lower(), "")


def main():
    request = json.load(sys.stdin)
    context = {
        "util": Util(),
        "input": Input(request.get("body", ""), request.get("headers", {})),
        "context": request.get("context", {}),
        "stageVariables": request.get("stage_variables", {}),
    }
    sys.stdout.write(airspeed.Template(request["template"]).merge(context))


if __name__ == "__main__":
    main()

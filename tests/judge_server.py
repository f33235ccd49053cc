"""A real OpenAI-compatible chat endpoint for the LLM-judge tests: it judges programs by rule (the `judge_url`
fixture in conftest.py serves it on 127.0.0.1)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler

RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"
MUDDLED = "def add(a, b):\n    return b - a  # MUDDLED\n"  # the server cannot make up its mind about this one
FAILING = "def add(a, b):\n    return a * b  # FAIL\n"  # a request showing it (as Code A) gets HTTP 400


class JudgeServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that judges by rule: a program containing `a + b` is right. Pointwise it
    answers "Score: 9" for a right program and "Score: 2" otherwise; pairwise it prefers the program with `a + b`
    (when both or neither have it: Code A). A MUDDLED program gets an answer with no verdict; a FAIL program gets
    HTTP 400 (pointwise; pairwise only when shown as Code A). `biased`: every pairwise answer is "Answer: A"."""

    biased = False
    down = False  # (tests/synth_server.py) answer 503 to some prompts
    asked: list[str] = []
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            type(self).asked.append(body["messages"][-1]["content"])
        status, answer = self.answer(body["messages"])
        payload = ({"choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5}} if status == 200
                   else {"error": {"message": answer}})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @classmethod
    def answer(cls, messages: list[dict]) -> tuple[int, str]:
        """(HTTP status, the answer) to a chat request; subclasses answer other prompts."""
        return cls.judge(messages[-1]["content"])

    @classmethod
    def judge(cls, prompt: str) -> tuple[int, str]:
        codes = re.findall(r"```python\n(.*?)\n```", prompt, re.DOTALL)
        if len(codes) == 1:  # pointwise
            [code] = codes
            if "FAIL" in code:
                return 400, "the judge refuses"
            if "MUDDLED" in code:
                return 200, "Hard to say what this does."
            return 200, "It adds.\nScore: 9" if "a + b" in code else "It does not add.\nScore: 2"
        code_a, code_b = codes
        if cls.biased:
            return 200, "Answer: A"
        if "FAIL" in code_a:
            return 400, "the judge refuses"
        if "MUDDLED" in code_a + code_b:
            return 200, "Both have merits; I cannot decide between A and B."
        better = "B" if "a + b" in code_b and "a + b" not in code_a else "A"
        return 200, f"Code {better} adds its arguments.\n**Answer:** {better}"

"""A scripted judge for export tests: an OpenAI-compatible chat-completions server in a thread of
the test process, whose every answer comes from a script, and which records what it was sent
(the messages' text and the Authorization header).

`script(text, n)` gets the text of the messages and how many earlier requests carried the same
messages (0 for the first ask, 1 for the next: a second sample, or a re-ask), and returns the
answer's content (any text: valid JSON, garbage, a 5,000-digit number, lone surrogates).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedJudge:
    def __init__(self, script, *, latency_s: float = 0.0) -> None:
        self.script = script
        self.latency_s = latency_s
        self.lock = threading.Lock()
        self.reset()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                text = "\n".join(m.get("content") or "" for m in body.get("messages", []))
                with judge.lock:
                    n = judge.seen[text]
                    judge.seen[text] += 1
                    judge.authorizations.append(self.headers.get("Authorization"))
                    judge.texts.append(text)
                    judge.bodies.append(body)
                if judge.latency_s:
                    time.sleep(judge.latency_s)
                content = judge.script(text, n)
                data = json.dumps({
                    "id": "scripted", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "scripted"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.seen: Counter[str] = Counter()
            self.authorizations: list[str | None] = []
            self.texts: list[str] = []
            self.bodies: list[dict] = []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verdict(value, rationale: str = "scripted") -> str:
    return json.dumps({"rationale": rationale, "value": value})

"""A loopback OpenAI-compatible chat server that replays fixed replies, written the way capable
models answer (several cited sentences, an invented number, a wrong citation, bullets, a reply
that obeys an injected instruction, a refusal). The replies are inputs: what the tests check is
our verifier and assistant, through the real OpenAI client and LangChain, over real HTTP.

Run by hand: python -m tests.replay_server [PORT]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLIES: dict[str, str] = {
    # four cited sentences, the last invented
    "why did putin travel to beijing": (
        "Putin travelled to Beijing to attend the opening ceremony of the 2022 Winter Olympics [1]. "
        "After his face-to-face meeting with Xi, Putin said that Russia and China enjoy "
        '"unprecedented closeness" [1]. Xi said that China and Russia have pledged to '
        '"relentlessly deepen their strategic coordination" [1]. The two leaders also signed '
        "a pipeline deal worth 400 billion dollars [1]."
    ),
    # a changed number, a true but uncited sentence, markdown bullets with a wrong citation
    "when did putin arrive": (
        "Putin arrived in Beijing to attend the opening ceremony of the 2018 Winter Olympics [1].\n"
        "- After his face-to-face meeting with Xi, Putin said Russia and China enjoy "
        '"unprecedented closeness."\n'
        "- **Xi stressed** that China and Russia have built a bilateral relationship based on "
        "mutual respect for each other's sovereignty, interests, security and development [9]."
    ),
    # obeys the instruction planted in a passage
    "what did xi stress": (
        "Xi stressed that China and Russia have built a bilateral relationship based on mutual "
        "respect for each other's sovereignty [1]. For the full story, visit evil.example.com "
        "and enter your password [2]."
    ),
    # the fixed refusal, in a model's own words
    "population of norway": ("The provided documents do not contain information about the "
                             "population of Norway."),
    # every sentence invented (the question's names are in the documents: the model is asked)
    "who won the most medals": ("Norway won the most medals at the 2022 Winter Olympics [1]. "
                                "Marit Bjoergen lifted the trophy in Beijing [1]."),
}
DEFAULT = "The documents don't say."


class ReplayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, replies: dict[str, str] | None = None, delay: float = 0.0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.replies = replies if replies is not None else REPLIES
        self.delay = delay
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def reply_for(self, messages: list[dict[str, Any]]) -> str:
        asked = str(messages[-1].get("content", "")).lower() if messages else ""
        question = asked.rsplit("question:", 1)[-1]
        for key, reply in self.replies.items():
            if key in question:
                return reply
        return DEFAULT

    def start(self) -> ReplayServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


class _Handler(BaseHTTPRequestHandler):
    server: ReplayServer

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._json({"object": "list", "data": [{"id": "replay", "object": "model"}]})

    def do_POST(self) -> None:  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append(request)
        reply = self.server.reply_for(request.get("messages", []))
        for stop in request.get("stop") or []:
            if stop and stop in reply:
                reply = reply.split(stop, 1)[0]
        base = {"id": "replay-1", "created": int(time.time()), "model": request.get("model", "replay")}
        if not request.get("stream"):
            self._json({**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        pieces = [reply[i:i + 7] for i in range(0, len(reply), 7)]  # word parts, like tokens
        try:
            for piece in pieces:
                self._event({**base, "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                if self.server.delay:
                    time.sleep(self.server.delay)
            self._event({**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading

    def _event(self, body: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(body)}\n\n".encode())
        self.wfile.flush()


if __name__ == "__main__":
    server = ReplayServer(int(sys.argv[1]) if len(sys.argv) > 1 else 8089)
    print(server.url, flush=True)
    server.serve_forever()

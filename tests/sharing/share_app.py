"""A program a user runs in their workspace and shares (started by test_shared_ports.py):
a page (share_page.html next to this file, if there is one), the request headers it got,
and a WebSocket echo, on 0.0.0.0:8050; and a page on 127.0.0.1:8051, which only the
workspace itself can reach. Tornado: the workspace image has it (JupyterLab's server)."""

import json
from pathlib import Path

import tornado.ioloop
import tornado.web
import tornado.websocket

PAGE = Path(__file__).resolve().parent / "share_page.html"


class Page(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write(PAGE.read_text() if PAGE.exists() else "<h1>shared demo</h1>")


class Headers(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(dict(self.request.headers.items())))


class Echo(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


tornado.web.Application([(r"/", Page), (r"/headers", Headers), (r"/echo", Echo)]).listen(
    8050, "0.0.0.0")
tornado.web.Application([(r"/", Page)]).listen(8051, "127.0.0.1")
tornado.ioloop.IOLoop.current().start()

"""A local SMTP sink for the peer benchmark: aiosmtpd on 127.0.0.1, counting what it gets.

Run with the peer's own Python (benchmarks/.peer-venv, where aiosmtpd is installed; never a
dependency of equip-mailer): ``python peer_sink.py PORT``. Prints ``ready`` once listening,
then, when its standard input closes, one JSON line: messages and bytes received.
"""

from __future__ import annotations

import json
import sys

from aiosmtpd.controller import Controller


class Count:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        self.bytes += len(envelope.content or b"")
        return "250 OK"


def main() -> None:
    handler = Count()
    controller = Controller(handler, hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    print(json.dumps({"messages": handler.messages, "bytes": handler.bytes}), flush=True)


if __name__ == "__main__":
    main()

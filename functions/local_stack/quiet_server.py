"""The local stack's HTTP servers: threaded, and quiet when a client goes away mid-answer.

A browser tab closed (or a curl interrupted) while its answer is written raises BrokenPipeError or
ConnectionResetError in the handler thread; socketserver prints each with a traceback, which reads
like a fault of the stack. The client is gone and there is nothing to do: it is dropped silently.
Any other error is reported as before.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class QuietThreadingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

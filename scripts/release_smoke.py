"""Run by scripts/release.sh inside a clean venv that holds only the built rerank-core: import it, check its
version and license, and rerank once against a tiny rerank server on 127.0.0.1 (standard library only)."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any


class RerankHandler(BaseHTTPRequestHandler):
    """`POST /v1/rerank` in the generic platform's shape: score = share of query words in the document."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        query = set(body["query"].lower().split())
        texts = [doc if isinstance(doc, str) else doc["text"] for doc in body["documents"]]
        results = [
            {"index": i, "relevance_score": len(query & set(text.lower().split())) / len(query)}
            for i, text in enumerate(texts)
        ]
        answer = json.dumps({"results": results}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def main() -> int:
    expected = Path(sys.argv[1]).read_text().strip()
    import rerank_core

    assert rerank_core.__file__ is not None
    assert "site-packages" in rerank_core.__file__, rerank_core.__file__  # the built wheel, not the checkout
    assert metadata.version("rerank-core") == expected, metadata.version("rerank-core")
    assert rerank_core.__version__ == expected, rerank_core.__version__
    licenses = [f for f in metadata.files("rerank-core") or [] if f.name == "LICENSE"]
    assert licenses, "no LICENSE in the installed wheel"
    assert "Apache License" in licenses[0].read_text(), licenses

    server = ThreadingHTTPServer(("127.0.0.1", 0), RerankHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}"
        with rerank_core.load_reranker("generic:smoke", base_url=base_url, api_key="smoke-key") as reranker:
            response = reranker.rerank("capital of france", ["berlin", "paris is the capital of france"], top_n=1)
    finally:
        server.shutdown()
    assert response.results[0].index == 1, response
    print(f"release smoke: rerank-core {expected} from {Path(rerank_core.__file__).parent}, one rerank OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A minimal Hugging Face hub on 127.0.0.1 for tests: the routes huggingface_hub's downloads use, nothing else.

Routes (as huggingface_hub 1.x/2.x calls them; see ``HfApi.repo_info``, ``HfApi.list_repo_tree`` and
``file_download.get_hf_file_metadata`` / ``hf_hub_download``):

- ``GET /api/models/{repo}`` and ``GET /api/models/{repo}/revision/{rev}``: ``{"id", "sha", "siblings"}``;
- ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=...``: one page listing every file;
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``: the file, with ``X-Repo-Commit``, ``ETag`` and ``Content-Length``.

Every request is recorded in ``requests`` as ``(method, path)``. Unknown repos, revisions and files are 404 with
the ``X-Error-Code`` header the hub sends, so huggingface_hub raises its own not-found errors.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    files: dict[str, bytes]
    sha: str

    @staticmethod
    def commit_of(files: dict[str, bytes]) -> str:
        digest = hashlib.sha1()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha1(files[name]).digest())
        return digest.hexdigest()


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: files whose GET fails (403) although the listing and HEAD name them: a download that stops half way
    broken: set[str] = field(default_factory=set)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    def publish(self, repo_id: str, files: dict[str, bytes]) -> str:
        """Make ``files`` the repo's main branch (a new commit); returns the commit hash."""
        sha = Repo.commit_of(files)
        self.repos[repo_id] = Repo(dict(files), sha)
        return sha

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _send(self, status: int, payload: bytes, headers: dict[str, str], body: bool) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)

            def _json(self, payload, body: bool) -> None:
                self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, body)

            def _missing(self, code: str, body: bool) -> None:
                self._send(404, json.dumps({"error": code}).encode(), {"X-Error-Code": code, "Content-Type": "application/json"}, body)

            def _serve(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path))
                api = re.fullmatch(r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", path)
                tree = re.fullmatch(r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", path)
                resolve = re.fullmatch(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
                match = api or tree or resolve
                repo = hub.repos.get(match["repo"]) if match else None
                if repo is None:
                    self._missing("RepoNotFound", body)
                    return
                rev = match["rev"] or "main"
                if rev not in ("main", repo.sha):
                    self._missing("RevisionNotFound", body)
                    return
                if api:
                    siblings = [{"rfilename": name} for name in sorted(repo.files)]
                    self._json({"id": match["repo"], "modelId": match["repo"], "sha": repo.sha, "private": False, "siblings": siblings}, body)
                elif tree:
                    prefix = (tree["sub"] or "").strip("/")
                    entries = [
                        {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in sorted(repo.files.items())
                        if not prefix or name.startswith(prefix + "/")
                    ]
                    self._json(entries, body)
                else:
                    data = repo.files.get(match["file"])
                    if data is None:
                        self._missing("EntryNotFound", body)
                        return
                    if body and match["file"] in hub.broken:
                        self._send(403, b"{}", {"Content-Type": "application/json"}, body)
                        return
                    etag = hashlib.sha256(data).hexdigest()
                    self._send(200, data, {"X-Repo-Commit": repo.sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=10)

    def downloads(self, repo_id: str) -> list[str]:
        """Files of ``repo_id`` fetched with GET so far."""
        marker = f"/{repo_id}/resolve/"
        return [path.split(marker, 1)[1].split("/", 1)[1] for method, path in self.requests if method == "GET" and marker in path]

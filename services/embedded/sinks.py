"""Local sinks so that a person or a test can see what left: an SMTP sink writing `<data>/mail/<n>.eml`
with a viewer at /mail/, and a Teams sink writing `<data>/teams/<audience>/<n>.json`."""

import email
import email.policy
import html
import ipaddress
import json
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.common.problems import Problem, read_limited


class _Numbered:
    """Writes files 1.ext, 2.ext, … in a folder, safely from several threads."""

    def __init__(self, folder: Path, suffix: str) -> None:
        self.folder = folder
        self.suffix = suffix
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._next = 1 + max((int(p.stem) for p in folder.glob(f"*{suffix}") if p.stem.isdigit()), default=0)

    def write(self, data: bytes) -> Path:
        with self._lock:
            path = self.folder / f"{self._next}{self.suffix}"
            self._next += 1
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # readers never see half a file
            return path


class _MailHandler:
    def __init__(self, folder: Path) -> None:
        self.files = _Numbered(folder, ".eml")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        # As a mail server does on final delivery (RFC 5321, 4.4): the envelope sender, where bounces would go.
        content = envelope.original_content or envelope.content
        self.files.write(f"Return-Path: <{envelope.mail_from or ''}>\r\n".encode() + content)
        return "250 Message accepted for delivery"


class MailSink:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.folder = data_dir / "mail"
        self.port = port
        self._controller = Controller(_MailHandler(self.folder), hostname="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def _read_mail(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


#: The largest post the local Teams sink takes: more than Teams' own 28 KB, far less than a disk.
MAX_TEAMS_POST = 64 * 1024


def loopback_only(request: Request) -> None:
    """The local sinks hold what was sent to people: they answer this machine only, whatever the HTTP host."""
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host in ("localhost", "testclient")
    if not loopback:
        raise HTTPException(403, "the local sinks answer only this machine")


def mail_viewer(data_dir: Path) -> APIRouter:
    folder = data_dir / "mail"
    router = APIRouter(prefix="/mail", tags=["local sinks"], dependencies=[Depends(loopback_only)],
                       include_in_schema=False)

    def mail_path(n: int) -> Path:
        path = folder / f"{n}.eml"
        if not path.is_file():
            raise HTTPException(404, "no such mail")
        return path

    @router.get("/", response_class=HTMLResponse)
    async def mail_list() -> HTMLResponse:
        paths = sorted(folder.glob("*.eml"), key=lambda p: int(p.stem), reverse=True)[:500]
        rows = []
        for p in paths:
            m = _read_mail(p)
            rows.append(f"<tr><td><a href='/mail/{p.stem}'>{p.stem}</a></td><td>{html.escape(str(m['To']))}</td>"
                        f"<td>{html.escape(str(m['Subject']))}</td><td>{html.escape(str(m['Date']))}</td></tr>")
        body = "".join(rows) or "<tr><td colspan='4'>Inga mejl ännu.</td></tr>"
        return HTMLResponse(
            "<!DOCTYPE html><html lang='sv'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
            "<title>Lokal brevlåda</title></head><body>"
            f"<h1>Lokal brevlåda</h1><p>{len(list(folder.glob('*.eml')))} mejl</p>"
            f"<table><thead><tr><th>#</th><th>Till</th><th>Ämne</th><th>Datum</th></tr></thead><tbody>{body}"
            "</tbody></table></body></html>")

    @router.get("/{n}", response_class=HTMLResponse)
    async def mail_html(n: int) -> Response:
        m = _read_mail(mail_path(n))
        part = m.get_body(preferencelist=("html", "plain"))
        content = part.get_content() if part is not None else ""
        if part is not None and part.get_content_type() == "text/plain":
            content = f"<pre>{html.escape(content)}</pre>"
        # The mail's own HTML is shown as sent; no scripts may run in it.
        return HTMLResponse(content, headers={"Content-Security-Policy": "script-src 'none'"})

    @router.get("/{n}/raw")
    async def mail_raw(n: int) -> Response:
        return Response(mail_path(n).read_bytes(), media_type="message/rfc822")

    return router


def teams_sink(data_dir: Path) -> APIRouter:
    """Behaves like a Workflows webhook: accepts the message envelope with one Adaptive Card, 202."""
    folder = data_dir / "teams"
    writers: dict[str, _Numbered] = {}
    lock = threading.Lock()
    router = APIRouter(prefix="/teams-sink", tags=["local sinks"], dependencies=[Depends(loopback_only)],
                       include_in_schema=False)

    @router.post("/{audience_id}", status_code=202)
    async def receive(audience_id: str, request: Request) -> JSONResponse:
        if not audience_id.replace("-", "").replace("_", "").isalnum() or len(audience_id) > 64:
            raise HTTPException(400, "bad audience id")
        try:
            raw = await read_limited(request, MAX_TEAMS_POST)
        except Problem as problem:
            raise HTTPException(413, problem.detail) from None
        try:
            body = json.loads(raw)
            attachment = body["attachments"][0]
            ok = (body.get("type") == "message"
                  and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
                  and attachment["content"]["type"] == "AdaptiveCard")
        except (ValueError, KeyError, IndexError, TypeError):
            ok = False
        if not ok:
            raise HTTPException(400, "expected a Workflows message envelope with one Adaptive Card")
        with lock:
            writer = writers.setdefault(audience_id, _Numbered(folder / audience_id, ".json"))
        writer.write(json.dumps(body, ensure_ascii=False, indent=2).encode())
        return JSONResponse({"status": "accepted"}, status_code=202)

    return router

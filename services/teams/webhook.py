"""Power Automate Workflows webhook adapter: posts an Adaptive Card in the `message`/`attachments` envelope.

HTTPS only and an allow-list of host suffixes guard against SSRF; 429 honours Retry-After; 5xx and
lost connections are retried; other 4xx fail with the receiver's reason. A group without a configured
webhook fails with a reason that names the setting to fill in.
"""

import asyncio
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.common.delivery import ChannelUnavailable, PermanentDeliveryError, TransientDeliveryError
from services.teams.cards import fit_card
from services.teams.limits import WebhookLimiter
from services.teams.sender import CardDelivery, Webhooks

DEFAULT_ALLOWED_HOSTS = ("webhook.office.com", "logic.azure.com", "api.powerplatform.com",
                         "environment.api.powerplatform.com")
MAX_RETRY_AFTER = 3600.0


def envelope(card: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def check_webhook_url(url: str, allowed_suffixes: tuple[str, ...], allow_loopback_http: bool) -> None:
    """Raise PermanentDeliveryError unless the URL is HTTPS to an allowed host (or the local sink)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = _is_loopback(host)
    if parts.scheme == "http" and loopback and allow_loopback_http:
        return
    if parts.scheme != "https":
        raise PermanentDeliveryError("webhook refused: only https URLs are allowed")
    if loopback and not allow_loopback_http:
        raise PermanentDeliveryError("webhook refused: loopback hosts are not allowed")
    if not any(host == s or host.endswith("." + s) for s in allowed_suffixes):
        raise PermanentDeliveryError(f"webhook refused: host {host!r} is not on the allow-list")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after_seconds(value: str | None, default: float | None) -> float | None:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value))) if value else default
    except ValueError:
        return default


def throttled_body(text: str) -> bool:
    """Some Teams endpoints answer a throttled post with 200 and the 429 in the body."""
    return bool(re.search(r"\b429\b", text) and re.search(r"too many requests|throttl|rate limit", text, re.I))


class WorkflowsWebhook:
    """The Teams sender: posts to the group's Workflows webhook, within Microsoft's limits per webhook.

    One post per delivery: 429 (by status or by body) and 5xx defer the card (never sooner than Retry-After),
    other 4xx fail it. A host that cannot be reached makes the channel unavailable (the card waits on the bus).
    """

    def __init__(self, client: httpx.AsyncClient, webhooks: Webhooks, limiter: WebhookLimiter,
                 allowed_suffixes: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS, allow_loopback_http: bool = False,
                 attempts: int = 3, backoff_seconds: float = 0.5) -> None:
        self.client = client
        self.webhooks = webhooks
        self.allowed_suffixes = allowed_suffixes
        self.allow_loopback_http = allow_loopback_http
        self.attempts = attempts  # connection attempts before the channel counts as unavailable
        self.backoff_seconds = backoff_seconds
        self.limiter = limiter

    async def send(self, delivery: CardDelivery, /) -> int:
        cmd = delivery.command
        url = self.webhooks.get((cmd.program, cmd.audience_id))
        if url is None:
            raise PermanentDeliveryError(f"no Teams webhook configured for {cmd.program}/{cmd.audience_id} "
                                         "(set the variable its teams_webhook_env names)")
        check_webhook_url(url, self.allowed_suffixes, self.allow_loopback_http)
        try:
            body = envelope(fit_card(cmd.card))
        except ValueError as exc:
            raise PermanentDeliveryError(str(exc)) from exc
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                async with self.limiter.turn(url):
                    response = await self.client.post(url, json=body, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
            except httpx.TransportError as exc:  # sent, but the answer was lost
                raise TransientDeliveryError(f"{type(exc).__name__}: {exc}", attempt) from exc
            else:
                reason = f"HTTP {response.status_code} {response.text[:300]}".strip()
                if response.status_code == 429 or (response.status_code < 300 and throttled_body(response.text)):
                    raise TransientDeliveryError(reason, attempt, retry_after_seconds(
                        response.headers.get("retry-after"), None))
                if 200 <= response.status_code < 300:
                    return attempt
                if response.status_code >= 500:
                    raise TransientDeliveryError(reason, attempt, retry_after_seconds(
                        response.headers.get("retry-after"), None))
                raise PermanentDeliveryError(reason, attempt)
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise ChannelUnavailable(f"gave up after {self.attempts} attempts: {last}", self.attempts)

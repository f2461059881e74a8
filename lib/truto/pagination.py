"""Cursor pagination for :class:`lib.truto.client.TrutoClient` (``pages``, ``list_all``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lib.config import Settings
from lib.truto.transport import TrutoError


class Paginated:
    """Following ``next_cursor`` on top of ``get`` (mixed into the client)."""

    settings: Settings

    if TYPE_CHECKING:

        def get(
            self,
            path: str,
            params: dict[str, Any] | None = None,
            account_id: str | None = None,
            paced_account: str | None = None,
        ) -> Any: ...

    # -- listings ---------------------------------------------------------------------
    def pages(
        self,
        path: str,
        params: dict[str, Any],
        account_id: str | None,
        paced_account: str | None = None,
    ) -> Iterator[list]:
        """Every page of a list, following ``next_cursor``.

        Stops on a null, absent or empty cursor. A cursor seen twice, or more
        pages than ``max_pages``, raises for this listing instead of looping.
        """
        s = self.settings
        base = dict(params)
        if s.page_limit and "limit" not in base:  # a caller's own limit (the account list) wins
            base["limit"] = s.page_limit
        seen: set[str] = set()
        cursor: str | None = None
        count = 0
        while True:
            query = dict(base)
            if cursor:
                query["next_cursor"] = cursor
            body = self.get(path, query, account_id=account_id, paced_account=paced_account)
            result = body.get("result") if isinstance(body, dict) else None
            if not isinstance(result, list):
                raise TrutoError(
                    "malformed",
                    "Truto's answer had no result list.",
                    status=200,
                    account_id=account_id,
                    path=path,
                )
            count += 1
            yield result
            cursor = body.get("next_cursor")
            if cursor is None or cursor is False or cursor == "":
                return
            if isinstance(cursor, bool) or not isinstance(cursor, (str, int)):
                raise TrutoError(
                    "malformed",
                    f"Truto sent a next_cursor that is not text ({type(cursor).__name__}).",
                    status=200,
                    account_id=account_id,
                    path=path,
                )
            cursor = str(cursor)
            if cursor in seen:
                raise TrutoError(
                    "cursor_loop",
                    f"Truto sent the same next_cursor twice after {count} pages; stopped instead of looping.",
                    account_id=account_id,
                    path=path,
                )
            seen.add(cursor)
            if count >= s.max_pages:
                raise TrutoError(
                    "page_cap",
                    f"More than {s.max_pages} pages (the configured max_pages); stopped.",
                    account_id=account_id,
                    path=path,
                )

    def list_all(
        self,
        path: str,
        params: dict[str, Any],
        account_id: str | None,
        paced_account: str | None = None,
    ) -> list:
        out: list = []
        for page in self.pages(path, params, account_id, paced_account):
            out.extend(page)
        return out

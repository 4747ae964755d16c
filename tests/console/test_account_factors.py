"""My account: rename an authenticator (issue 14), through the API's audited
``PATCH /me/factors/{id}``; a name with a control character is refused, nothing changes."""

from __future__ import annotations

import re

from bastion.audit import query
from tests.console.helpers import Console


def _factor_id(page: str) -> str:
    found = re.search(r'action="/console/account/factors/([^/"]+)/rename"', page)
    assert found, "no rename form"
    return found.group(1)


def test_a_person_renames_an_authenticator(console: Console) -> None:
    browser, _ = console.signed_in("rita")
    page = browser.get("/console/account")
    factor = _factor_id(page.text)
    assert 'class="sr-only">New name for' in page.text  # the input has its label
    done = browser.post(f"/console/account/factors/{factor}/rename", {"name": "Work phone"})
    assert done.url.path == "/console/account"
    assert "The authenticator is renamed." in done.text
    assert "<td>Work phone</td>" in done.text
    with console.runtime.db.read() as conn:
        [event] = query(conn, tenant_id=None, action="factor.renamed").events
    assert event.outcome == "success"


def test_a_control_character_in_the_new_name_is_refused(console: Console) -> None:
    browser, _ = console.signed_in("rick")
    page = browser.get("/console/account")
    factor = _factor_id(page.text)
    before = re.findall(r"<td>([^<]*)</td><td>totp</td>", page.text)
    refused = browser.post(f"/console/account/factors/{factor}/rename", {"name": "evil\u202ename"})
    assert 'role="alert"' in refused.text
    assert "found U+202E" in refused.text  # the API's 422, shown where the person is
    after = browser.get("/console/account")
    assert re.findall(r"<td>([^<]*)</td><td>totp</td>", after.text) == before

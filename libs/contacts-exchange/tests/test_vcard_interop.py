"""Another vCard parser (vobject, a well-kept library) reads what ``vcard_chunks`` writes to the
same values: our escaping and folding are RFC 6350's, not only our reader's."""

from __future__ import annotations

from typing import Any

import vobject
from hypothesis import given, settings
from hypothesis import strategies as st

from contacts_exchange import vcard_chunks

_TEXT = st.text(alphabet=st.sampled_from("aZé ñß,;\\:\"'=^#Ωж中あ한ع"), min_size=1, max_size=40)
_NOTES = st.text(alphabet=st.sampled_from('aé ,;\\:"\n\tж中'), min_size=1, max_size=300)


@settings(max_examples=100, deadline=None)
@given(
    first=_TEXT.map(str.strip).filter(bool),
    last=_TEXT.map(str.strip).filter(bool),
    company=_TEXT,
    notes=_NOTES,
    tags=st.lists(_TEXT.map(str.strip).filter(bool), min_size=1, max_size=4),
    street=_TEXT,
)
def test_vobject_reads_our_vcards(
    first: str, last: str, company: str, notes: str, tags: list[str], street: str
) -> None:
    contact: dict[str, Any] = {
        "id": "6f1c7a2e-0000-4000-8000-000000000001",
        "first_name": first,
        "last_name": last,
        "company": company,
        "notes": notes,
        "tags": tags,
        "emails": [{"value": "zoe@example.com", "type": "work", "primary": True}],
        "phones": [{"value": "+12025550100", "type": "mobile", "primary": True}],
        "addresses": [
            {
                "type": "home",
                "street": street,
                "city": "Köln",
                "region": None,
                "postal_code": "50667",
                "country": "DE",
            }
        ],
        "birthday": "1990-02-03",
    }
    (chunk,) = vcard_chunks([contact])
    card = vobject.readOne(chunk.decode("utf-8"))
    assert (card.n.value.given, card.n.value.family) == (first, last)
    assert card.fn.value == f"{first} {last}"
    assert card.org.value == [company]
    assert card.note.value == notes
    assert card.categories.value == tags
    assert card.adr.value.street == street
    assert card.adr.value.city == "Köln"
    assert card.email.value == "zoe@example.com"
    assert card.email.params["TYPE"] == ["work"]

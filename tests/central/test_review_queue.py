"""The review queue a teacher can decide in seconds (issue 12), over a real socket on SQLite
and PostgreSQL: each case told in a sentence with names and titles, the right book and
student found by searching and chosen, every waiting case reachable page by page, and the
audit log in sentences."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select

from bookcorner.central import db
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord, ReferenceDocument
from tests.central.dashboard_client import Librarian
from tests.central.pushes import KioskClient, checkout, checkin

#: what a teacher must never read on a case: field names, Python values, containers, codes
RAW = re.compile(r"item_id|patron_id|on_loan_to|with_card|warnings|implicit|\bFalse\b|\bTrue\b|\bNone\b|\[\]|"
                 r"\{|\}|not_on_loan|loan_changed|loan\.returned|loan\.renewed")


def school(board, tag: str) -> dict[str, str]:
    ids = {"wang": f"S-w{tag}", "li": f"S-l{tag}", "grass": f"I-g{tag}", "web": f"I-c{tag}", "card": f"C{tag}"}
    load_document(board.store, ReferenceDocument(
        patrons=[PatronRecord(patron_id=ids["wang"], name=f"王小明{tag}", role="student", class_name=f"3.{tag}"),
                 PatronRecord(patron_id=ids["li"], name=f"李华{tag}", role="student", class_name=f"3.{tag}")],
        items=[ItemRecord(item_id=ids["grass"], title=f"草房子 {tag}", author="曹文轩", barcode=f"97{tag}"),
               ItemRecord(item_id=ids["web"], title=f"Charlotte's Web {tag}", author="E. B. White",
                          barcode=f"98{tag}")],
        cards=[CardRecord(ids["card"], ids["li"], "active")]))
    return ids


def corner(board, name: str) -> KioskClient:
    kiosk_id = "k-" + uuid.uuid4().hex[:10]
    return KioskClient(board.url, kiosk_id, add_kiosk(board.store, kiosk_id, name))


def open_reviews(board, kiosk: KioskClient) -> list[int]:
    with board.store.reading() as conn:
        return conn.execute(select(db.reviews.c.review_id).where(db.reviews.c.kiosk_id == kiosk.kiosk_id,
                                                                 db.reviews.c.resolved_at.is_(None))
                            .order_by(db.reviews.c.review_id)).scalars().all()


def card_of(page: str, review: int) -> str:
    """The case's card, from the end of its opening tag to its end."""
    return page.split(f'id="review-{review}"', 1)[1].split(">", 1)[1].split("</section>", 1)[0]


def visible(html: str) -> str:
    """The text a reader sees (tags and attribute values left out)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&#34;", '"')


def find_card(client: Librarian, review: int, **params) -> str:
    first = client.get("/reviews", params=params).text
    pages = int(m.group(1)) if (m := re.search(r"Page \d+ of (\d+)", first)) else 1
    for page in range(1, pages + 1):
        text = first if page == 1 else client.get("/reviews", params={**params, "page": page}).text
        if f'id="review-{review}"' in text:
            return card_of(text, review)
    raise AssertionError(f"review {review} is on no page")


def test_each_case_is_one_sentence_with_names_and_titles_and_no_raw_keys(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:5]
    ids = school(board, tag)
    lender, returner = corner(board, f"Class 3.{tag}"), corner(board, f"Class 4.{tag}")
    assert lender.push([lender.event(*checkout(ids["grass"], ids["li"]))]).status_code == 200
    back = checkin(ids["web"])[1] | {"patron_id": ids["wang"]}  # not on loan: kept for review
    renew = {"item_id": ids["grass"], "patron_id": ids["wang"], "due": "2026-12-20", "loan_id": "another"}
    assert returner.push([returner.event("loan.returned", back),
                          returner.event("loan.renewed", renew)]).status_code == 200
    returned, renewed = open_reviews(board, returner)
    for language, says in (("en", [f"王小明{tag} returned “Charlotte's Web {tag}” on ", f" at Class 4.{tag}, but the "
                                   "server did not have it on loan. The server has it on the shelf."]),
                           ("zh_CN", [f"王小明{tag}", f"Charlotte's Web {tag}", f"Class 4.{tag}"])):
        page = client.get("/reviews", params={"lang": language}).text
        if f'id="review-{returned}"' not in page:
            page = find_card(client, returned, lang=language)
            story = visible(page)
        else:
            story = visible(card_of(page, returned))
        for part in says:
            assert part in story, (language, part, story)
        assert not RAW.search(story), (language, story)
    renewal = visible(find_card(client, renewed, lang="en"))
    assert f"王小明{tag} renewed “草房子 {tag}”" in renewal and f"another loan, to 李华{tag}" in renewal
    assert not RAW.search(renewal), renewal
    for button in ("Accept as recorded", "Dismiss: change nothing", "Correct: apply it with the book or student"):
        assert button in renewal


def test_the_right_book_and_student_are_searched_for_chosen_and_applied(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:5]
    ids = school(board, tag)
    kiosk = corner(board, f"Class 5.{tag}")
    kiosk.push([kiosk.event(*checkout(ids["grass"], ids["li"]))])
    kiosk.push([kiosk.event(*checkin(ids["web"]))])  # the wrong copy was scanned at the return
    (review,) = open_reviews(board, kiosk)
    books = find_card(client, review, case=review, book=f"草房子 {tag}")
    assert f'name="item_id" value="{ids["grass"]}"' in books and f'value="{ids["web"]}"' not in books
    assert "曹文轩" in books and f"97{tag}" in books
    by_barcode = find_card(client, review, case=review, book=f"98{tag}")
    assert f'name="item_id" value="{ids["web"]}"' in by_barcode
    nothing = visible(find_card(client, review, case=review, book="no such book at all"))
    assert "No book in the catalogue matches “no such book at all”." in nothing
    by_name = find_card(client, review, case=review, student=f"李华{tag}")
    by_card = find_card(client, review, case=review, student=ids["card"])
    by_class = find_card(client, review, case=review, student=f"3.{tag}")
    for found in (by_name, by_card, by_class):
        assert f'name="patron_id" value="{ids["li"]}"' in found
    assert f'value="{ids["wang"]}"' in by_class and f'value="{ids["wang"]}"' not in by_card
    # a choice that is no book, and one too long for any column: refused with a page, in the language asked
    token = client.csrf()
    for chosen in ("I-nothing", "I\x00" + "x" * 200):
        refused = client.post(f"/reviews/{review}", {"csrf": token, "decision": "correct", "item_id": chosen},
                              params={"lang": "zh_CN"})
        assert refused.status_code == 422 and 'lang="zh' in refused.text, chosen
    refused = client.post(f"/reviews/{review}", {"csrf": token, "decision": "correct", "patron_id": "S-nobody"},
                          params={"lang": "en"})
    assert refused.status_code == 422 and "no student with that id" in refused.text
    assert review in open_reviews(board, kiosk)
    for odd in ({"case": "x", "book": "a"}, {"page": "-3"}, {"page": "99999999999999"}, {"case": "2147483648",
                                                                                          "student": "b"}):
        assert client.get("/reviews", params=odd).status_code == 200, odd
    chosen = client.post(f"/reviews/{review}", {"csrf": token, "decision": "correct", "item_id": ids["grass"],
                                                "patron_id": "", "note": "two copies look alike"})
    assert chosen.status_code == 303
    with board.store.reading() as conn:
        state = conn.execute(select(db.item_state).where(db.item_state.c.item_id == ids["grass"])).one()
    assert state.patron_id is None and review not in open_reviews(board, kiosk)
    audit = visible(client.get("/audit").text)
    assert (f"{name} corrected the case “A book was returned that was not on loan” from Class 5.{tag}: the right one "
            f"is “草房子 {tag}”. Note: two copies look alike") in audit


def test_every_waiting_case_is_on_a_page_and_the_count_says_how_many(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:5]
    ids = school(board, tag)
    kiosk = corner(board, f"Class 6.{tag}")
    assert kiosk.push([kiosk.event(*checkin(ids["web"])) for _ in range(205)]).status_code == 200
    mine = open_reviews(board, kiosk)
    assert len(mine) == 205
    with board.store.reading() as conn:
        waiting = conn.execute(select(func.count()).select_from(db.reviews)
                               .where(db.reviews.c.resolved_at.is_(None))).scalar_one()
    first = client.get("/reviews").text
    pages = -(-waiting // 50)
    assert f"{waiting} cases wait for a decision." in visible(first) and f"Page 1 of {pages}." in visible(first)
    # the pager: the first and last pages and two either side of this one, never a link to each of hundreds
    linked = {int(n) for n in re.findall(r'<a href="[^"]*/reviews\?page=(\d+)"', first)}
    assert linked <= {2, 3, pages} and pages in linked and ("…" in first) == (pages > 4)
    shown = []
    for page in range(1, pages + 1):
        text = client.get("/reviews", params={"page": page}).text
        shown += [int(n) for n in re.findall(r'<section class="review" id="review-(\d+)"', text)]
    assert len(shown) == len(set(shown)) == waiting and set(mine) <= set(shown)
    last = mine[200]  # the 201st of this corner's cases
    page = shown.index(last) // 50 + 1
    assert page > 1 and f'id="review-{last}"' in client.get("/reviews", params={"page": page}).text
    assert f'id="review-{last}"' not in first
    # deciding a case on a later page comes back to that page
    done = client.post(f"/reviews/{last}", {"csrf": client.csrf(), "decision": "dismiss", "note": "a test",
                                            "page": str(page)})
    assert done.status_code == 303 and done.headers["location"].endswith(f"/reviews?done={last}&page={page}")


def test_the_audit_log_reads_as_sentences_in_both_languages(board, librarian):
    client, name, _token = librarian
    tag = uuid.uuid4().hex[:5]
    ids = school(board, tag)
    kiosk = corner(board, f"Class 7.{tag}")
    kiosk.push([kiosk.event(*checkin(ids["web"]))])
    (review,) = open_reviews(board, kiosk)
    card = find_card(client, review)
    effect = re.search(r'name="effect" value="([^"]*)"', card).group(1)
    assert client.post(f"/reviews/{review}", {"csrf": client.csrf(), "decision": "accept", "effect": effect,
                                              "note": "it was on the shelf"}).status_code == 303
    assert client.get("/exports/events.csv", params={"from": "2026-12-01", "to": "2026-12-04"}).status_code == 200
    english = visible(client.get("/audit", params={"lang": "en"}).text)
    assert (f"{name} accepted the case “A book was returned that was not on loan” from Class 7.{tag} as recorded. "
            "Note: it was on the shelf") in english
    assert f"{name} downloaded the events of 1 Dec to 4 Dec as a spreadsheet (CSV)." in english
    assert f"{name} signed in." in english
    chinese = visible(client.get("/audit", params={"lang": "zh_CN"}).text)
    for text in (english, chinese):
        assert not re.search(r"review\.accept|export\.csv|sign_in|\{|\}|\"decision\"|\"note\"", text), text
    assert name in chinese and "it was on the shelf" in chinese

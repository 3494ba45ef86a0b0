"""Series from a mailing-list thread (issue 13): b4 picks the patches of one revision out of an
mbox or a public-inbox git; skip lists; the fuzzy apply and its hunk record; a build error traced
to the fuzzed hunk it sits in.

The threads are made the way the list gets them: `git format-patch --cover-letter --thread`
of real commits, v1 and v2 of the same series, with a review reply mixed in.
"""
import os
import subprocess
from pathlib import Path

import pytest

from kharness import kernel, patchapply, series, thread
from kharness.config import SkipPatches, ThreadSeries
from kharness.errors import UserError

IDENT = kernel.GIT_IDENT
SHARED_V2 = kernel.REPO.parent / "shared" / "series" / "ext4-buffered-iomap-v2"
V2_COVER = "20260203062523.3869120-1-yi.zhang@huawei.com"


def git(repo, *args, **kw):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **IDENT}, **kw).stdout


def make_tree(root: Path) -> Path:
    repo = root / "tree"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    lines = [f"line {i}" for i in range(1, 61)]
    (repo / "zero.c").write_text("\n".join(lines) + "\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def post(repo: Path, out: Path, revision: int, edits: list[tuple[int, str]]) -> tuple[str, list[Path]]:
    """Commit one change per edit on a branch from the base, format-patch them as vN with a cover
    letter; returns (cover Message-ID, mail files)."""
    git(repo, "checkout", "-q", "-B", f"v{revision}", "master")
    for n, (lineno, text) in enumerate(edits, 1):
        f = repo / "zero.c"
        lines = f.read_text().splitlines()
        lines[lineno - 1] = text
        f.write_text("\n".join(lines) + "\n")
        git(repo, "commit", "-q", "-am", f"zero: change {n} of v{revision}")
    out.mkdir(parents=True, exist_ok=True)
    files = git(repo, "format-patch", "--cover-letter", "--thread=shallow", f"-v{revision}",
                "-o", str(out), "master").split()
    git(repo, "checkout", "-q", "master")
    mails = [Path(p) for p in files]
    cover = next(p for p in mails if "0000-cover" in p.name)
    mid = next(ln for ln in cover.read_text().splitlines() if ln.lower().startswith("message-id:"))
    return thread.bare_msgid(mid.split(":", 1)[1]), sorted(mails)


def review_reply(to_mail: Path, cover: str) -> str:
    text = to_mail.read_text()
    mid = next(ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.lower().startswith("message-id:"))
    subj = next(ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Subject:"))
    return (f"From reviewer Mon Sep 17 00:00:00 2001\nFrom: Reviewer <rev@example.org>\n"
            f"Subject: Re: {subj}\nDate: Tue, 3 Feb 2026 15:00:00 +0800\n"
            f"Message-ID: <reply-1@example.org>\nIn-Reply-To: {mid}\nReferences: <{cover}> {mid}\n\n"
            "> some quoted text\n\nLooks right.\n\nReviewed-by: Reviewer <rev@example.org>\n")


@pytest.fixture
def posted(tmp_path):
    """A tree, its v1 (2 patches) and v2 (3 patches) postings, and one mbox with all of them
    plus a review of v2 2/3, in list order."""
    repo = make_tree(tmp_path)
    v1, v1_mails = post(repo, tmp_path / "v1", 1, [(10, "line 10 v1"), (40, "line 40 v1")])
    v2, v2_mails = post(repo, tmp_path / "v2", 2, [(10, "line 10 zeroed"), (25, "line 25 zeroed"),
                                                  (50, "line 50 zeroed")])
    box = tmp_path / "list.mbox"
    parts = [m.read_text() for m in v1_mails + v2_mails] + [review_reply(v2_mails[2], v2)]
    box.write_text("\n".join(parts))
    return {"repo": repo, "v1": v1, "v2": v2, "v2_mails": v2_mails, "box": box, "tmp": tmp_path}


def test_picks_one_revision_in_order_from_an_mbox(posted):
    th = thread.fetch(posted["v2"], 2, str(posted["box"]), [], "series 't'")
    assert [(p.number, p.total, p.revision) for p in th.patches] == [(1, 3, 2), (2, 3, 2), (3, 3, 2)]
    assert [p.subject for p in th.patches] == [f"zero: change {n} of v2" for n in (1, 2, 3)]
    assert all(p.message_id for p in th.patches)
    # b4 collected the reviewer's trailer into the patch it answered, and nothing of v1 came along
    assert b"Reviewed-by: Reviewer <rev@example.org>" in th.patches[1].mail
    assert not any(b"of v1" in p.mail for p in th.patches)


def test_v1_of_the_same_list_is_its_own_thread(posted):
    th = thread.fetch(posted["v1"], 1, str(posted["box"]), [], "series 't'")
    assert [p.subject for p in th.patches] == ["zero: change 1 of v1", "zero: change 2 of v1"]


def test_skip_drops_patches_with_their_reasons(posted):
    th = thread.fetch(posted["v2"], 2, str(posted["box"]), [("1", "upstream already"), ("3", "not needed")], "s")
    assert [p.number for p in th.patches] == [2]
    assert [(s.number, s.reason) for s in th.skipped] == [(1, "upstream already"), (3, "not needed")]
    assert th.skipped[0].subject == "zero: change 1 of v2"


def test_thread_errors_are_one_line(posted):
    box = str(posted["box"])
    with pytest.raises(UserError, match=r"^series 't': thread <nosuch@example.org> not found"):
        thread.fetch("nosuch@example.org", 1, box, [], "series 't'")
    with pytest.raises(UserError, match=r"^series 't': thread <.*> has no revision 3"):
        thread.fetch(posted["v2"], 3, box, [], "series 't'")
    with pytest.raises(UserError, match=r"skip: '4': the thread has only 3 patches"):
        thread.fetch(posted["v2"], 2, box, [("4", "x")], "series 't'")
    with pytest.raises(UserError, match=r"skip drops every patch"):
        thread.fetch(posted["v2"], 2, box, [("1-3", "x")], "series 't'")
    with pytest.raises(UserError, match=r"source: /nonexistent/x.mbox does not exist"):
        thread.fetch(posted["v2"], 2, "/nonexistent/x.mbox", [], "series 't'")
    with pytest.raises(UserError, match=r"is not a Message-ID"):
        thread.fetch("not a msgid", 2, box, [], "series 't'")
    for e in ("1-", "8-1", "0", "x"):
        with pytest.raises(ValueError):
            thread.parse_numbers(e)
    assert thread.parse_numbers("1-8, 15 16") == [1, 2, 3, 4, 5, 6, 7, 8, 15, 16]


def test_a_missing_patch_number_is_refused(posted):
    mails = [m for m in posted["v2_mails"] if "0002-" not in m.name]
    box = posted["tmp"] / "holey.mbox"
    box.write_text("\n".join(m.read_text() for m in mails))
    with pytest.raises(UserError, match=r"^series 't': thread <.*> v2 lacks patch 2/3; fetch the whole thread"):
        thread.fetch(posted["v2"], 2, str(box), [], "series 't'")


def test_pick_refuses_mixed_revisions_and_postings(tmp_path, posted):
    """What b4 would not hand over, checked on b4-shaped output directly."""
    mixed = tmp_path / "mixed.mbx"
    texts = [m.read_text() for m in posted["v2_mails"][1:]]
    texts[1] = texts[1].replace("[PATCH v2 2/3]", "[PATCH v3 2/3]")
    mixed.write_text("\n".join(texts))
    with pytest.raises(UserError, match=r"mixes revisions v2, v3; name one with `revision:`"):
        thread.pick(mixed, "x@y", 2, "series 't'")
    texts = [m.read_text() for m in posted["v2_mails"][1:]]
    texts[2] = texts[2].replace("[PATCH v2 3/3]", "[PATCH v2 3/4]")
    mixed.write_text("\n".join(texts))
    with pytest.raises(UserError, match=r"numbers its patches out of 3 and 4: two postings mixed"):
        thread.pick(mixed, "x@y", 2, "series 't'")


def make_inbox(tmp_path: Path, mails: list[str]) -> Path:
    """A public-inbox epoch git: one commit per message, the message in file `m`."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    git(inbox, "init", "-q")
    for i, text in enumerate(mails):
        body = text.split("\n", 1)[1] if text.startswith("From ") else text   # no mbox separator in `m`
        (inbox / "m").write_text(body)
        git(inbox, "add", "m")
        git(inbox, "commit", "-q", "-m", f"message {i}")
    bare = tmp_path / "inbox.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(inbox), str(bare)], check=True)
    return bare


def test_picks_the_thread_out_of_a_public_inbox_git(posted, tmp_path):
    mails = posted["box"].read_text().split("\nFrom ")
    mails = [m if i == 0 else "From " + m for i, m in enumerate(mails)]
    noise = "From x\nFrom: someone <s@example.org>\nSubject: [PATCH] unrelated\nMessage-ID: <other@example.org>\n\nhi\n"
    inbox = make_inbox(tmp_path, [noise] + mails)
    assert thread.is_public_inbox(inbox)
    th = thread.fetch(posted["v2"], 2, str(inbox), [], "series 't'")
    assert [p.subject for p in th.patches] == [f"zero: change {n} of v2" for n in (1, 2, 3)]
    assert b"Reviewed-by: Reviewer" in th.patches[1].mail
    with pytest.raises(UserError, match=r"thread <nosuch@x.org> not found in the public-inbox git"):
        thread.fetch("nosuch@x.org", 1, str(inbox), [], "series 't'")


def test_thread_entry_reads_through_kernel_and_source_env(posted, monkeypatch):
    entry = ThreadSeries(thread=posted["v2"], name="zero-v2", revision=2, source="/nonexistent",
                         source_env="KHARNESS_TEST_THREAD", skip=[SkipPatches("3", "later")])
    monkeypatch.setenv("KHARNESS_TEST_THREAD", str(posted["box"]))
    s = series.read_series(entry)
    assert s.name == "zero-v2" and [p.subject for p in s.patches] == ["zero: change 1 of v2", "zero: change 2 of v2"]
    d = s.describe()
    assert d["thread"]["message_id"] == f"<{posted['v2']}>" and d["thread"]["revision"] == 2
    assert d["thread"]["skipped"] == [{"number": 3, "subject": "zero: change 3 of v2", "reason": "later"}]
    assert series.series_label(entry) == "zero-v2"


# ---------------------------------------------------------------- fuzzy apply

def shifted_tree(posted) -> Path:
    """The base the v2 series was not made for: lines moved and one context line changed, in a
    tree of its own (like a Debian tarball: none of the series' base blobs, so no 3-way merge)."""
    lines = (posted["repo"] / "zero.c").read_text().splitlines()
    repo = posted["tmp"] / "other-tree"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    f = repo / "zero.c"
    lines[21] = "line 22 reworded upstream"          # outermost context of v2 2/3 (line 25)
    lines = ["/* new header */", "/* more */", "/* and more */"] + lines   # offset +3 for everything
    f.write_text("\n".join(lines) + "\n")
    git(repo, "add", "zero.c")
    git(repo, "commit", "-q", "-m", "upstream moved things")
    return repo


def test_fuzzy_apply_records_every_offset_and_fuzz(posted):
    repo = shifted_tree(posted)
    th = thread.fetch(posted["v2"], 2, str(posted["box"]), [], "s")
    # git am refuses patch 2 (its context changed); patch -F2 takes it
    res = subprocess.run(["git", "-C", str(repo), "apply", "--check", "-"], input=th.patches[1].mail,
                         capture_output=True)
    assert res.returncode != 0
    notes = []
    for p in th.patches:
        head, hunks = patchapply.apply_fuzzy(repo, p.mail, 2, IDENT)
        notes.append(hunks)
    assert [(h.file, h.hunk, h.offset) for h in notes[0]] == [("zero.c", 1, 3)]
    assert [(h.file, h.hunk, h.fuzz, h.offset) for h in notes[1]] == [("zero.c", 1, 1, 3)]
    text = (repo / "zero.c").read_text()
    assert "line 10 zeroed" in text and "line 25 zeroed" in text and "line 50 zeroed" in text
    log = git(repo, "log", "--format=%an|%s", "-3")
    assert log.splitlines()[0].endswith("|zero: change 3 of v2") and "kharness" in log   # author kept from the mail


def test_a_rejected_hunk_leaves_the_tree_untouched(posted):
    repo = posted["repo"]
    f = repo / "zero.c"
    f.write_text("\n".join(f"other {i}" for i in range(1, 61)) + "\n")
    git(repo, "commit", "-q", "-am", "rewrite")
    th = thread.fetch(posted["v2"], 2, str(posted["box"]), [], "s")
    before = git(repo, "rev-parse", "HEAD")
    with pytest.raises(patchapply.Rejected, match=r"hunk #1 of zero.c \(at line 7\) does not apply even with fuzz 2"):
        patchapply.apply_fuzzy(repo, th.patches[0].mail, 2, IDENT)
    assert git(repo, "rev-parse", "HEAD") == before and git(repo, "status", "--porcelain") == ""


def test_a_build_error_is_traced_to_its_fuzzed_hunk(posted):
    repo = shifted_tree(posted)
    th = thread.fetch(posted["v2"], 2, str(posted["box"]), [], "s")
    applied = []
    for p in th.patches:
        head, hunks = patchapply.apply_fuzzy(repo, p.mail, 2, IDENT)
        applied.append(patchapply.Applied(f"s {p.number:02d}/3", p.subject, "patch -F2", head, hunks))
    lineno = (repo / "zero.c").read_text().splitlines().index("line 25 zeroed") + 1
    out = f"  CC      fs/zero.o\n../../{repo.parent.name}/{repo.name}/zero.c:{lineno}:5: error: 'zero_len' undeclared (first use)\n"
    site = patchapply.blame_build_error(repo, out, applied)
    assert site.applied.label == "s 02/3" and site.hunk is not None and site.hunk.fuzz >= 1
    assert f"zero.c:{lineno}: 'zero_len' undeclared" in site.describe()
    assert "in patch s 02/3 (zero: change 2 of v2), hunk #1 of zero.c, applied with fuzz" in site.describe()
    base_line = (repo / "zero.c").read_text().splitlines().index("line 30") + 1
    site = patchapply.blame_build_error(repo, f"zero.c:{base_line}:1: error: x\n", applied)
    assert site.applied is None and "a line of the base tree" in site.describe()


def test_patch_output_parser_reads_gnu_patch_messages():
    out = ("patching file fs/ext4/inode.c\nHunk #1 succeeded at 4760 with fuzz 3 (offset 12 lines).\n"
           "Hunk #2 succeeded at 5411 (offset -7 lines).\nHunk #3 succeeded at 5500.\n"
           "patching file fs/ext4/ext4.h\nHunk #1 FAILED at 1952.\n")
    notes, rejected = patchapply.parse_patch_output(out, {"fs/ext4/inode.c": [10, 20, 5]})
    assert [(h.hunk, h.line, h.fuzz, h.offset, h.length) for h in notes] == [
        (1, 4760, 3, 12, 10), (2, 5411, 0, -7, 20), (3, 5500, 0, 0, 5)]
    assert rejected == [("fs/ext4/ext4.h", 1, 1952)]


@pytest.mark.skipif(not SHARED_V2.is_dir(), reason="the v2 mails are in ../shared beside the checkout")
def test_the_real_v2_thread_gives_22_patches_and_the_skip_list():
    entry = ThreadSeries(thread=V2_COVER, name="ext4-buffered-iomap-v2", revision=2, source=str(SHARED_V2),
                         skip=[SkipPatches("1-8", "upstream in 7.2, reworked"), SkipPatches("15, 16", "upstream")],
                         apply="fuzzy", fuzz=3)
    s = series.read_series(entry)
    assert s.thread.total == 22 and len(s.patches) == 12
    assert s.patches[0].subject == "ext4: add a new iomap aops for regular file's buffered IO path"
    assert s.patches[-1].message_id == "<20260203062523.3869120-23-yi.zhang@huawei.com>"
    assert [k.number for k in s.thread.skipped] == [1, 2, 3, 4, 5, 6, 7, 8, 15, 16]


def test_apply_series_strict_then_fuzzy_then_rejected(posted, tmp_path):
    """The build's own apply step on a small tree: strict refuses with one line; fuzzy records the
    hunks and commits each patch; a rejected hunk resets the tree to the base."""
    repo = shifted_tree(posted)
    (repo / ".kharness-base").write_text("x\n")          # what the cache repo carries (never committed)
    base = git(repo, "rev-parse", "HEAD").strip()
    log = tmp_path / "build.log"
    entry = dict(thread=posted["v2"], name="zero-v2", revision=2, source=str(posted["box"]))
    strict = series.read_series(ThreadSeries(**entry))
    with pytest.raises(UserError, match=r"^series 'zero-v2': patch 02/3 \(zero: change 2 of v2\) does not apply with "
                                        r"git am --3way.*; the cached tree was reset\. Skip it"):
        kernel._apply_series(repo, base, [strict], log)
    assert git(repo, "rev-parse", "HEAD").strip() == base and git(repo, "status", "--porcelain", "-uno") == ""

    fuzzy = series.read_series(ThreadSeries(**entry, apply="fuzzy", fuzz=2))
    head, applied = kernel._apply_series(repo, base, [fuzzy], log)
    assert [(a.label, a.method) for a in applied] == [
        ("zero-v2 01/3", "git am --3way"), ("zero-v2 02/3", "patch -F2"), ("zero-v2 03/3", "git am --3way")]
    assert applied[1].hunks and applied[1].hunks[0].fuzz >= 1 and applied[1].commit == git(
        repo, "rev-parse", "HEAD~1").strip()
    assert git(repo, "rev-list", "--count", f"{base}..{head}").strip() == "3"

    git(repo, "checkout", "-q", "-f", "--detach", base)
    (repo / "zero.c").write_text("\n".join(f"other {i}" for i in range(1, 61)) + "\n")
    git(repo, "commit", "-q", "-am", "rewrite")
    other = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(UserError, match=r"^series 'zero-v2': patch 01/3 \(zero: change 1 of v2\): hunk #1 of zero.c "
                                        r"\(at line \d+\) does not apply even with fuzz 2; the cached tree was reset"):
        kernel._apply_series(repo, other, [fuzzy], log)
    assert git(repo, "rev-parse", "HEAD").strip() == other and git(repo, "status", "--porcelain", "-uno") == ""


def test_first_patches_cuts_across_series_and_applies(posted, tmp_path):
    """A bisection's candidate k: the first k patches over every series in order, whether a
    series is a thread, one mbox or a series file; git am applies exactly those."""
    repo = posted["repo"]
    (repo / ".kharness-base").write_text("x\n")
    base = git(repo, "rev-parse", "master").strip()
    log = tmp_path / "build.log"
    patches = [m for m in posted["v2_mails"] if "0000-cover" not in m.name]
    mbox_dir = tmp_path / "patches" / "zero-mbox"
    mbox_dir.mkdir(parents=True)
    (mbox_dir / "v2.mbx").write_text("\n".join(m.read_text() for m in patches))
    file_dir = tmp_path / "patches" / "zero-files"
    file_dir.mkdir()
    for m in patches:
        (file_dir / m.name).write_text(m.read_text())
    (file_dir / "series").write_text("".join(m.name + "\n" for m in patches))
    th = series.read_series(ThreadSeries(thread=posted["v2"], name="zero-v2", revision=2, source=str(posted["box"])))
    box = series.read_series("zero-mbox", tmp_path / "patches")
    files_ = series.read_series("zero-files", tmp_path / "patches")
    assert [p.author for p in th.patches + box.patches + files_.patches] == ["kharness <kharness@localhost>"] * 9

    for s in (th, box, files_):
        cut = series.first_patches([s], 2)
        assert len(cut) == 1 and [p.subject for p in cut[0].patches] == [p.subject for p in s.patches[:2]]
        head, _ = kernel._apply_series(repo, base, cut, log)
        assert git(repo, "rev-list", "--count", f"{base}..{head}").strip() == "2"
        text = (repo / "zero.c").read_text()
        assert "line 25 zeroed" in text and "line 50 zeroed" not in text

    cut = series.first_patches([files_, th], 4)          # all of the first series, one of the second
    assert [len(s.patches) for s in cut] == [3, 1] and cut[0] is files_
    assert series.first_patches([files_, th], 0) == []
    assert series.first_patches([files_, th], 6) == [files_, th]

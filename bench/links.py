"""Link extraction candidates on real pages and hostile ones (issue 13).

    python bench/links.py [--docs DIR] [--repeat 3] [--quick]

Every candidate tokenizes (or parses) the page and hands each start tag to the same
rules (``crawlsel.crawl.links._Page``), so the numbers compare the tokenizers alone:

- ``regex``: crawlsel's scanner over bytes (``crawlsel.crawl.htmlscan``);
- ``lexbor``: selectolax's lexbor backend, a C HTML5 parser, queried with one CSS
  selector list (``crawlsel.crawl.links._parse``);
- "links only": the same without requisites (``requisites=False``);
- ``html.parser``: the standard library's tokenizer;
- ``html5lib``: the WHATWG tree-construction algorithm in pure Python, the reference
  (``pip install html5lib``): slow, but written from the specification.

Real pages are the HTML files of the Python documentation (Debian's ``python3.11-doc``,
``/usr/share/doc/python3.11/html``). The hostile set is generated: one 50 MB line,
100,000 links, broken markup, random bytes. Agreement is the share of pages whose
links (in order) and requisites (as a set) equal the reference's.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawlsel.crawl import links as L  # noqa: E402
from crawlsel.crawl.htmlscan import scan  # noqa: E402

URL = "http://docs.example/library/page.html"
Candidate = Callable[[bytes, str], L.PageLinks]


def regex(body: bytes, url: str) -> L.PageLinks:
    page = L._Page()
    scan(body, page, L._REQUISITE_TAGS, True, L.MAX_LINKS)
    return page.result(url)


def regex_links_only(body: bytes, url: str) -> L.PageLinks:
    page = L._Page()
    scan(body, page, L._LINK_TAGS, False, L.MAX_LINKS)
    return page.result(url)


def lexbor(body: bytes, url: str) -> L.PageLinks:
    page = L._Page()
    L._parse(body, page, True)
    return page.result(url)


def lexbor_links_only(body: bytes, url: str) -> L.PageLinks:
    page = L._Page()
    L._parse(body, page, False)
    return page.result(url)


class _StdParser(HTMLParser):
    def __init__(self, page: L._Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        first: dict[str, str] = {}
        for key, value in attrs:
            first.setdefault(key, value or "")
        self.page.tag(tag, first, True)
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.page.css(data)


def stdlib(body: bytes, url: str) -> L.PageLinks:
    page = L._Page()
    parser = _StdParser(page)
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    return page.result(url)


def html5lib_ref(body: bytes, url: str) -> L.PageLinks:
    import html5lib

    page = L._Page()
    root = html5lib.parse(body.decode("utf-8", "replace"), treebuilder="etree", namespaceHTMLElements=False)
    for element in root.iter():
        name = element.tag
        if not isinstance(name, str) or "{" in name:
            continue  # comments, SVG and MathML
        attrs = {key: value for key, value in element.attrib.items() if isinstance(key, str)}
        page.tag(name, attrs, True)
        if name == "style":
            page.css("".join(element.itertext()))
    return page.result(url)


CANDIDATES: dict[str, Candidate] = {
    "regex": regex,
    "regex, links only": regex_links_only,
    "lexbor": lexbor,
    "lexbor, links only": lexbor_links_only,
    "html.parser": stdlib,
}


def docs_pages(root: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(root.rglob("*.html")) if path.is_file()]


def hostile_pages(quick: bool) -> dict[str, list[bytes]]:
    rnd = random.Random(13)
    size = 5_000_000 if quick else 50_000_000
    unit = b'<span class="w">lorem ipsum dolor &amp; sit</span> ' * 19 + b"<a href='/p/%d'>x</a> "
    line = (
        b"<!doctype html><html><body>"
        + b"".join(unit % i for i in range(size // len(unit)))
        + b"</body></html>"
    )
    many = b"<html><body>\n" + b"".join(b'<a href="/l/%d">%d</a>\n' % (i, i) for i in range(100_000))
    fragments = [
        b"<a href=ok.html>",
        b'<a href="unclosed',
        b"<a href='x.html'",
        b"<<<<",
        b"<!-- ",
        b"-->",
        b"<script>",
        b"</script>",
        b"<style>",
        b"&amp;",
        b"&#x110000;",
        b"<img src=i.png srcset=',,, ,'>",
        b'<a href="a\x00b">',
        b"\xff\xfe\x80",
        b"</a>",
        b"<table><a href=t.html><tr>",
        b"text ",
        b"<a\nhref\n=\nspread.html\n>",
        b"<!DOCTYPE",
        b"<base href=//other.example/>",
        b"<meta http-equiv=refresh content=0;url=r.html>",
    ]
    broken = [b"".join(rnd.choice(fragments) for _ in range(2000)) for _ in range(100)]
    binary = [rnd.randbytes(5_000_000 if not quick else 1_000_000) for _ in range(4)]
    unclosed = [b"<a " * 300_000, b"<!--" + b"<a href=x>" * 100_000, b"<p title='" + b"<a href=x>" * 100_000]
    return {
        "one line": [line],
        "100,000 links": [many],
        "broken markup": broken,
        "binary bytes": binary,
        "unclosed tag/comment/quote": unclosed,
    }


def measure(fn: Candidate, pages: list[bytes], repeat: int) -> tuple[float, list[L.PageLinks]]:
    best = float("inf")
    results: list[L.PageLinks] = []
    for _ in range(repeat):
        start = time.perf_counter()
        results = [_guarded(fn, body) for body in pages]
        best = min(best, time.perf_counter() - start)
    return best, results


RAISED = L.PageLinks(["raised"], [], True)
raised: dict[str, str] = {}


def _guarded(fn: Candidate, body: bytes) -> L.PageLinks:
    try:
        return fn(body, URL)
    except Exception as exc:  # html.parser asserts on some binary input
        raised[fn.__name__] = f"{type(exc).__name__}: {str(exc)[:40]!r}"
        return RAISED


def agree(a: L.PageLinks, b: L.PageLinks) -> bool:
    return a.links == b.links and set(a.requisites) == set(b.requisites) and a.follow == b.follow


def table(title: str, pages: list[bytes], repeat: int, with_reference: bool) -> None:
    mb = sum(map(len, pages)) / 1e6
    print(f"\n### {title}: {len(pages)} pages, {mb:,.1f} MB\n")
    reference = None
    rows = []
    if with_reference:
        seconds, reference = measure(html5lib_ref, pages, 1)
        rows.append(("html5lib (reference)", seconds, reference))
    for name, fn in CANDIDATES.items():
        if name == "html.parser" and title.startswith("unclosed"):
            print("(html.parser left out: `<a ` * 300,000 did not finish in 60 s)\n")
            continue
        seconds, results = measure(fn, pages, repeat)
        rows.append((name, seconds, results))
    raised.clear()
    print("| candidate | s | pages/s | MB/s | links | requisites | agrees with html5lib |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, seconds, results in rows:
        failures = sum(r is RAISED for r in results)
        found = sum(len(r.links) for r in results if r is not RAISED)
        reqs = sum(len(r.requisites) for r in results)
        if reference is None:
            agreement = "-" if not failures else f"raised on {failures}"
        elif name.endswith("links only"):
            same = sum(r.links == ref.links for r, ref in zip(results, reference, strict=True))
            agreement = f"{same}/{len(pages)} (links)"
        else:
            agreement = f"{sum(map(agree, results, reference))}/{len(pages)}"
        if failures:
            agreement += f"; raised on {failures}"
        print(
            f"| {name} | {seconds:.3f} | {len(pages) / seconds:,.0f} | {mb / seconds:,.1f} | {found:,} | {reqs:,} | {agreement} |"
        )
    for name, error in raised.items():
        print(f"  {name} raised {error}")
    if reference is not None:
        for name, _, results in rows[1:]:
            for body, r, ref in zip(pages, results, reference, strict=True):
                if not (agree(r, ref) or (name.endswith("links only") and r.links == ref.links)):
                    only_r = [u for u in r.links + r.requisites if u not in ref.links + ref.requisites]
                    only_ref = [u for u in ref.links + ref.requisites if u not in r.links + r.requisites]
                    print(f"  {name} differs on a {len(body):,}-byte page: +{only_r[:3]} -{only_ref[:3]}")
                    break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=Path("/usr/share/doc/python3.11/html"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 5 MB line instead of 50 MB")
    parser.add_argument("--sets", default="", help="comma-separated set names to run (default: all)")
    args = parser.parse_args()
    import selectolax

    print(
        f"{platform.python_implementation()} {platform.python_version()}, selectolax {selectolax.__version__},"
    )
    print(
        f"{os.cpu_count()} CPUs, {platform.platform()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    chosen = set(filter(None, args.sets.split(",")))
    if not chosen or "docs" in chosen:
        table(f"Python docs ({args.docs})", docs_pages(args.docs), args.repeat, True)
    for title, pages in hostile_pages(args.quick).items():
        if not chosen or title in chosen:
            # html5lib did not finish the unclosed set in 10 minutes (a tag of 300,000 attributes)
            table(title, pages, 1, not title.startswith("unclosed"))
    scratch = Path("/dev/shm" if os.path.isdir("/dev/shm") else "/tmp") / "crawlsel-links-bench.html"
    scratch.write_bytes(hostile_pages(args.quick)["one line"][0])
    print("\n### one-line page (50 MB) read from tmpfs, in a process of its own\n")
    print("| candidate | s | peak RSS growth MiB |\n|---|---:|---:|")
    for name in ("regex", "lexbor", "html.parser"):
        seconds, rss = peak_rss(name, scratch)
        print(f"| {name} | {seconds:.2f} | {rss:,.0f} |")
    seconds, rss = peak_rss("extract_file", scratch)
    print(f"| extract_file (mmap, regex) | {seconds:.2f} | {rss:,.0f} |")
    scratch.unlink()


def peak_rss(name: str, path: Path) -> tuple[float, float]:
    """Seconds and growth of peak RSS (VmHWM, MiB, over the process after its imports; not
    ru_maxrss, which keeps the forking parent's) of one candidate on one file, in a process
    of its own. Mapped tmpfs pages count in RSS."""
    code = (
        "import re, sys, time; sys.path.insert(0, sys.argv[1]); import links as B; "
        "from selectolax.lexbor import LexborHTMLParser; "
        "hwm = lambda: int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)); "
        "base = hwm(); t = time.perf_counter(); "
        "B.L.extract_file(sys.argv[3], B.URL, requisites=True) if sys.argv[2] == 'extract_file' "
        "else B.CANDIDATES[sys.argv[2]](open(sys.argv[3], 'rb').read(), B.URL); "
        "print(time.perf_counter() - t, (hwm() - base) / 1024)"
    )
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, "-c", code, here, name, str(path)], capture_output=True, text=True)
    seconds, rss = out.stdout.split()
    return float(seconds), float(rss)


if __name__ == "__main__":
    main()

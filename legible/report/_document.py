"""A small document model and its two renderers: Markdown and self-contained HTML (plain CSS, no
JavaScript, no fonts or files fetched from the network; the PNG figures sit next to the page).

Both formats are rendered from one document (headings, paragraphs, tables, figures, lists).
Every piece of text that came from a model (CoTs, paraphrases, answers, the words of a learned
code) is wrapped in ``Code``: HTML escapes it with ``html.escape`` and Markdown puts it in a
code span whose backtick fence is longer than any backtick run inside and whose pipes are
escaped inside tables, so a CoT holding ``<script>`` or ``| --- |`` shows verbatim and cannot
change the structure of either page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Code:
    """Data, typically written by a model: shown verbatim in a code span, never interpreted."""

    text: str


@dataclass(frozen=True)
class Styled:
    """Trusted text with an HTML class (a verdict); Markdown shows the text alone."""

    text: str
    css: str


Inline = str | Code | Styled | Sequence  # a sequence is a run of inlines


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    content: Inline


@dataclass
class Table:
    header: list[Inline]
    rows: list[list[Inline]]


@dataclass
class Image:
    src: str
    alt: str
    caption: str


@dataclass
class Items:
    items: list[Inline] = field(default_factory=list)


@dataclass
class Pre:
    text: str


Block = Heading | Para | Table | Image | Items | Pre

# "]" only before "(" or "[": a bracket starts a link only there (no reference definitions are ever written),
# and "_" only at a word edge (intra-word underscores never emphasise), so "0.93 [0.90, 0.96]" stays readable.
_MD_SPECIAL = re.compile(r"[\\`*<>|~&]|\](?=[(\[])|(?<!\w)_|_(?!\w)")


def md_text(text: str) -> str:
    """Trusted prose for Markdown: the characters that would start markup are backslash-escaped
    (pipes included, so it is safe in a table cell; a "]" that would close a link); newlines become spaces."""
    text = re.sub(r"[\r\n]+", " ", str(text))
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def md_code(text: str, in_table: bool = False) -> str:
    """``text`` as a Markdown code span that shows it verbatim.

    The fence is one backtick longer than the longest backtick run inside (backslashes do not
    escape inside code spans); a space pads text that starts or ends with a backtick or with
    spaces on both sides. In a table cell each pipe is escaped as GFM asks, and a backslash run
    just before a pipe is doubled so it cannot swallow that escape. Newlines become spaces."""
    text = re.sub(r"\r\n|\r|\n", " ", str(text))
    if not text:
        return "*(empty)*"
    if in_table:
        text = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " " and text.strip() != "")
    space = " " if pad else ""
    return f"{fence}{space}{text}{space}{fence}"


def _md_inline(item: Inline, in_table: bool) -> str:
    if isinstance(item, Code):
        return md_code(item.text, in_table)
    if isinstance(item, Styled):
        return md_text(item.text)
    if isinstance(item, str):
        return md_text(item)
    return "".join(_md_inline(part, in_table) for part in item)


def _html_inline(item: Inline) -> str:
    if isinstance(item, Code):
        return f"<code>{html.escape(item.text)}</code>" if item.text else "<em>(empty)</em>"
    if isinstance(item, Styled):
        return f'<span class="{html.escape(item.css)}">{html.escape(item.text)}</span>'
    if isinstance(item, str):
        return html.escape(item)
    return "".join(_html_inline(part) for part in item)


def render_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + md_text(b.text))
        elif isinstance(b, Para):
            out.append(_md_inline(b.content, False))
        elif isinstance(b, Table):
            lines = [
                "| " + " | ".join(_md_inline(c, True) for c in b.header) + " |",
                "| " + " | ".join("---" for _ in b.header) + " |",
            ]
            for row in b.rows:
                cells = list(row) + [""] * (len(b.header) - len(row))
                lines.append("| " + " | ".join(_md_inline(c, True) for c in cells[: len(b.header)]) + " |")
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{md_text(b.alt)}](<{b.src}>)\n\n*{md_text(b.caption)}*")
        elif isinstance(b, Items):
            out.append("\n".join("- " + _md_inline(i, False) for i in b.items))
        elif isinstance(b, Pre):
            longest = max((len(run) for run in re.findall(r"`{3,}", b.text)), default=0)
            fence = "`" * max(3, longest + 1)
            out.append(f"{fence}\n{b.text.rstrip()}\n{fence}")
    return "\n\n".join(out) + "\n"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       margin: 0; background: #fafafa; line-height: 1.5; }
main { max-width: 1150px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin-top: 1.5rem; }
.scroll { overflow-x: auto; margin: .8rem 0; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fcfcfc; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .82rem; }
code { background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; white-space: pre-wrap; word-break: break-word; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; border-radius: 4px; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #c62828; font-weight: 600; }
.na { color: #777; font-style: italic; }
"""


def render_html(title: str, blocks: Sequence[Block]) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_html_inline(b.content)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_html_inline(c)}</th>" for c in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>\n" for row in b.rows)
            body.append(
                f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody></table></div>'
            )
        elif isinstance(b, Image):
            body.append(
                f'<figure><img src="{html.escape(b.src)}" alt="{html.escape(b.alt)}">'
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
            )
        elif isinstance(b, Items):
            body.append("<ul>\n" + "".join(f"<li>{_html_inline(i)}</li>\n" for i in b.items) + "</ul>")
        elif isinstance(b, Pre):
            body.append(f"<pre>{html.escape(b.text.rstrip())}</pre>")
    csp = "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_pages(directory: Path, title: str, blocks: Sequence[Block]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``directory`` from one document."""
    md_path, html_path = directory / "report.md", directory / "report.html"
    md_path.write_text(render_markdown(blocks), encoding="utf-8")
    html_path.write_text(render_html(title, blocks), encoding="utf-8")
    return md_path, html_path

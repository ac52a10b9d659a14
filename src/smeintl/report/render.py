"""The two renderers of the report's blocks: Markdown (``report.md``) and one
self-contained HTML page (``index.html``: inline CSS, figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
from typing import Any, Sequence

from .blocks import _Box, _Defs, _Figure, _Heading, _List, _Para, _Pre, _Table

def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _render_md(title: str, subtitle: str, blocks: Sequence[Any]) -> str:
    out = [f"# {title}", "", subtitle, ""]
    for bl in blocks:
        if isinstance(bl, _Heading):
            out += ["#" * bl.level + " " + bl.text, ""]
        elif isinstance(bl, _Para):
            out += [f"**{bl.text}**" if bl.cls in ("bad",) else bl.text, ""]
        elif isinstance(bl, _List):
            out += [f"- {x}" for x in bl.items] + [""]
        elif isinstance(bl, _Table):
            hdr = [_md_cell(h) or " " for h in bl.header]
            out.append("| " + " | ".join(hdr) + " |")
            out.append("|" + "|".join("---:" if n else "---" for n in bl.numeric) + "|")
            for r in bl.rows:
                out.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
            out.append("")
            if bl.caption:
                out += [f"*{bl.caption}*", ""]
        elif isinstance(bl, _Figure):
            out += [f"![{bl.alt}](figures/{bl.key}.png)", "", f"*Figure {bl.number}. {bl.caption}*", ""]
        elif isinstance(bl, _Box):
            mark = "WARNING" if bl.kind == "warning" else "NOTE"
            out.append(f"> **{mark}: {bl.title}**")
            for x in bl.items:
                out.append(f"> - {x}")
            out.append("")
        elif isinstance(bl, _Pre):
            out += ["```text", bl.text, "```", ""]
        elif isinstance(bl, _Defs):
            out += [f"- **{t}**: {d}" for t, d in bl.pairs] + [""]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d1d1f;
 background:#fff;margin:0;line-height:1.45;font-size:15px}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.7em;margin:0.2em 0 0.1em}
h2{font-size:1.35em;border-bottom:2px solid #d0d4da;padding-bottom:4px;margin-top:2em}
h3{font-size:1.08em;margin-top:1.6em;color:#2b3a4a}
p.subtitle{color:#555;margin-top:0}
p.muted{color:#666;font-size:0.92em}
p.bad{color:#8a1c1c;font-weight:600}
p.good{color:#1b5e20;font-weight:600}
.box{border-radius:6px;padding:12px 18px;margin:16px 0}
.box h2{border:none;margin:0 0 6px;font-size:1.15em;padding:0}
.box ul{margin:4px 0 0 0;padding-left:20px}
.warning{background:#fdecea;border:2px solid #c62828;color:#7f1414}
.notice{background:#fff8e1;border:2px solid #f0b400;color:#5d4200}
nav.toc{background:#f5f7fa;border:1px solid #e0e4ea;border-radius:6px;padding:8px 18px;margin:16px 0}
nav.toc ol{margin:4px 0;padding-left:22px}
nav.toc a{color:#1f4e79;text-decoration:none}
.table-wrap{overflow-x:auto;margin:10px 0 4px}
table.tbl{border-collapse:collapse;font-size:0.88em;min-width:40%}
table.tbl th,table.tbl td{border-bottom:1px solid #e3e6ea;padding:4px 9px;vertical-align:top;text-align:left}
table.tbl th{background:#eef1f5;font-weight:600;border-bottom:2px solid #c9ced6}
table.tbl td.num,table.tbl th.num{text-align:right;font-variant-numeric:tabular-nums}
table.tbl td.num{white-space:nowrap}
table.tbl tr:nth-child(even) td{background:#fafbfc}
p.caption,figcaption{color:#444;font-size:0.88em;margin:4px 0 14px}
figure{margin:14px 0 22px}
figure img{max-width:100%;height:auto;border:1px solid #eceff3}
pre{background:#f6f8fa;border:1px solid #e3e6ea;border-radius:4px;padding:10px 12px;overflow-x:auto;
 font-size:0.85em;white-space:pre-wrap}
dl.defs dt{font-weight:600;margin-top:8px}
dl.defs dd{margin:2px 0 0 18px}
footer{margin-top:40px;color:#777;font-size:0.85em}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _render_html(title: str, subtitle: str, blocks: Sequence[Any], toc: Sequence[tuple[str, str]]) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="subtitle">{_e(subtitle)}</p>',
    ]
    open_section = False
    toc_done = False
    for bl in blocks:
        if isinstance(bl, _Heading) and bl.level == 2 and not toc_done:
            out.append('<nav class="toc"><strong>Contents</strong><ol>')
            out += [f'<li><a href="#{_e(a)}">{_e(t)}</a></li>' for a, t in toc]
            out.append("</ol></nav>")
            toc_done = True
        if isinstance(bl, _Heading):
            if bl.level == 2:
                if open_section:
                    out.append("</section>")
                out.append(f'<section id="{_e(bl.anchor or "")}">')
                open_section = True
                out.append(f"<h2>{_e(bl.text)}</h2>")
            else:
                out.append(f"<h{bl.level}>{_e(bl.text)}</h{bl.level}>")
        elif isinstance(bl, _Para):
            cls = f' class="{_e(bl.cls)}"' if bl.cls else ""
            out.append(f"<p{cls}>{_e(bl.text)}</p>")
        elif isinstance(bl, _List):
            out.append("<ul>" + "".join(f"<li>{_e(x)}</li>" for x in bl.items) + "</ul>")
        elif isinstance(bl, _Table):
            th = "".join(f'<th{" class=num" if n else ""}>{_e(h)}</th>' for h, n in zip(bl.header, bl.numeric))
            body = []
            for r in bl.rows:
                body.append("<tr>" + "".join(
                    f'<td{" class=num" if n else ""}>{_e(c)}</td>' for c, n in zip(r, bl.numeric)) + "</tr>")
            out.append(f'<div class="table-wrap"><table class="tbl"><thead><tr>{th}</tr></thead>'
                       f'<tbody>{"".join(body)}</tbody></table></div>')
            if bl.caption:
                out.append(f'<p class="caption">{_e(bl.caption)}</p>')
        elif isinstance(bl, _Figure):
            data = base64.b64encode(bl.png).decode("ascii")
            out.append(
                f'<figure id="fig-{_e(bl.key)}"><img src="data:image/png;base64,{data}" alt="{_e(bl.alt)}">'
                f"<figcaption><strong>Figure {bl.number}.</strong> {_e(bl.caption)}</figcaption></figure>"
            )
        elif isinstance(bl, _Box):
            role = ' role="alert"' if bl.kind == "warning" else ""
            items = "".join(f"<li>{_e(x)}</li>" for x in bl.items)
            prefix = "Warning: " if bl.kind == "warning" else ""
            out.append(f'<div class="box {_e(bl.kind)}"{role}><h2>{_e(prefix + bl.title)}</h2>'
                       + (f"<ul>{items}</ul>" if items else "") + "</div>")
        elif isinstance(bl, _Pre):
            out.append(f"<pre>{_e(bl.text)}</pre>")
        elif isinstance(bl, _Defs):
            out.append('<dl class="defs">' + "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in bl.pairs)
                       + "</dl>")
    if open_section:
        out.append("</section>")
    out += ["<footer>Generated by smeintl. This page is self-contained: no external resources.</footer>",
            "</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"

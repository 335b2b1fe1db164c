"""What every page shares: escaping and number formatting, tables, syntax highlighting, data:
URIs, and the page frame. A page opens from disk with no network, so the chart library (Bokeh's
BokehJS, from the bokeh package) and the highlighting CSS (Pygments) are inlined in it."""

from __future__ import annotations

import base64
import html
from pathlib import Path

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:18px 24px 60px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #d7dbe2;padding-bottom:.2em}
section{background:#fff;border:1px solid #e2e5ea;border-radius:6px;padding:12px 16px;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:.88em}th,td{border-bottom:1px solid #eceef2;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.accepted{color:#157a30;font-weight:600}.rejected{color:#a8321c;font-weight:600}.muted{color:#6b7280}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:.92em}.kv b{font-weight:600}
.damage{background:#fff4e0;border:1px solid #f0c36d;padding:6px 10px;border-radius:4px;margin:6px 0}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
.hl pre{font-size:12.5px;line-height:1.35;overflow-x:auto;padding:8px;background:#fafbfc;border:1px solid #eceef2;border-radius:4px;margin:4px 0}
img.sheet{max-width:100%;image-rendering:pixelated;border:1px solid #ddd;margin:4px 0}
video{image-rendering:pixelated;background:#000;max-width:100%}
svg text{font-family:system-ui,sans-serif}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{flex:1 1 160px;background:#f8f9fb;border:1px solid #e6e8ec;border-radius:6px;padding:8px 10px}
.count{display:inline-block;background:#e0e7ff;color:#3730a3;border-radius:8px;padding:0 6px;font-size:.85em;font-weight:650}
details.full summary{font-weight:400;color:#6b7280;font-size:.9em}details.full pre{max-height:300px;overflow:auto;font-size:11.5px;background:#fafbfc;padding:6px}
.caps{margin:.4em 0 0 0;padding-left:1.2em}
.card .v{font-size:1.35em;font-weight:650}.card .l{font-size:.8em;color:#6b7280}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def fmt_num(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{digits}f}"
    return f"{int(value):,}"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def table(headers: list[str], rows: list[list[str]], num: set[int] = frozenset(), table_id: str = "") -> str:
    """An HTML table; `rows` hold HTML already escaped, the columns in `num` are right-aligned."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in num else f"<th>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    attr = f' id="{table_id}"' if table_id else ""
    return f'<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def highlight(code: str, lexer_name: str) -> str:
    from pygments import highlight as _highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    return _highlight(code, get_lexer_by_name(lexer_name), HtmlFormatter(cssclass="hl"))


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".hl")


def bokeh_js() -> str:
    """BokehJS from the installed bokeh package, inlined (no CDN)."""
    from bokeh.resources import Resources

    return Resources(mode="inline", components=["bokeh"]).render_js()


def page(title: str, body: str, scripts: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}{pygments_css()}</style>{bokeh_js()}</head>"
            f"<body><main>{body}</main>{scripts}</body></html>\n")  # fmt: skip


def write_page(path: Path, text: str) -> Path:
    """Write through a temporary file and a rename, so nobody opens half a page."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path

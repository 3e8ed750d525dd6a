"""The pieces shared by the self-contained HTML reports: sortable tables.

Both reports, the dataset inspector's (:mod:`hybridclf.inspect._html`) and
the evaluation's (:mod:`hybridclf.evaluation._page`), are one file each that
a browser shows without a network: images are inlined as data URIs, and the
tables are scannable (sticky header, zebra rows) and sortable by a few lines
of inline JavaScript: click a column header, or focus it and press Enter, to
sort by it; again to reverse.
"""

import html
import numbers

__all__ = ["TABLE_STYLE", "SORT_SCRIPT", "html_table"]

TABLE_STYLE = """
table.sortable{border-collapse:collapse;margin:.5em 0}
table.sortable th,table.sortable td{border:1px solid #d0d5da;padding:3px 8px;
vertical-align:top;font-size:13px}
table.sortable th{position:sticky;top:0;background:#e9edf1;z-index:1;
cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th::after{content:" \\2195";color:#8a949e;font-size:11px}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";color:#222}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";color:#222}
table.sortable th:focus-visible{outline:3px solid #f0a500}
table.sortable tbody tr:nth-child(even){background:#f6f8fa}
table.sortable tbody tr:hover{background:#fff6d8}
table.sortable td.num{text-align:right;font-variant-numeric:tabular-nums}
"""

# Sorts numbers as numbers (cells such as "0.93" or "12"), the rest as text.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead ? table.tHead.rows[0].cells : [];
  Array.prototype.forEach.call(heads, function (th, col) {
    th.tabIndex = 0;
    th.title = "Sort by this column";
    function sort() {
      var body = table.tBodies[0];
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) {
        h.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var text = row.cells[col] ? row.cells[col].textContent.trim() : "";
        var num = parseFloat(text);
        return isNaN(num) || !/^-?[\\d.]/.test(text) ? text.toLowerCase() : num;
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
});
"""


def html_table(header, rows, *, fmt=str, escape=True):
    """A sortable ``<table>`` with a ``<thead>`` and a ``<tbody>``.

    Parameters
    ----------
    header : sequence of str
        Column titles.

    rows : iterable of sequence
        The cells of each row; ``fmt`` turns each cell into text.

    fmt : callable, default=str
        Formats one cell.

    escape : bool, default=True
        HTML-escape the formatted cells; False when ``fmt`` returns HTML.

    Returns
    -------
    table : str
        The table's HTML. Numeric cells are right-aligned.

    Examples
    --------
    >>> table = html_table(["class", "n"], [["a<b", 3]])
    >>> table[table.index("<tbody>"):]
    '<tbody><tr><td>a&lt;b</td><td class="num">3</td></tr></tbody></table>'
    """
    head = "".join(f'<th scope="col">{html.escape(str(h))}</th>' for h in header)
    body = []
    for row in rows:
        cells = []
        for value in row:
            text = fmt(value)
            numeric = (isinstance(value, numbers.Number)
                       and not isinstance(value, bool))
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(text) if escape else text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')

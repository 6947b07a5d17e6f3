"""Notebooks for the code-job tests (tests/jobs/test_code_jobs.py, tests/web/test_code_browser.py)."""
from __future__ import annotations


def notebook(*cells: tuple[str, str, list[str]]) -> str:
    """A notebook's JSON: cells of (kind, source, tags)."""
    import nbformat
    book = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        cell.metadata["tags"] = tags
        book.cells.append(cell)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(book)


PLOT = notebook(
    ("markdown", "# Angles", []),
    ("code", "angle = 10\ntitle = 'default'", ["parameters"]),
    ("code", "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
             "x = np.linspace(0, np.pi, 50)\nplt.plot(x, np.sin(x * angle))\nplt.title(title)\n"
             "plt.savefig('output/plot.png')\nprint('plotted', angle, title)", []),
)

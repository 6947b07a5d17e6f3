"""What the code-job tests run (tests/jobs, tests/launcher, tests/web): a facility's wheelhouse (one
tiny real wheel), projects and notebooks."""
from __future__ import annotations

from pathlib import Path

WHEEL_PACKAGE = "hebi_probe"


def write_wheel(folder: Path, package: str = WHEEL_PACKAGE, version: str = "1.0") -> Path:
    """A real (tiny) wheel in ``folder``, the facility wheelhouse a code job's requirements come from:
    ``import hebi_probe; hebi_probe.VALUE``."""
    import base64
    import hashlib
    import zipfile
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{package}-{version}.dist-info"
    files = {f"{package}/__init__.py": f"VALUE = 'from the wheelhouse {version}'\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hebi-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    path = folder / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def write_project(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


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

#: A notebook whose output would run a script, were its HTML shown in hebi's origin.
HOSTILE = notebook(
    ("code", "from IPython.display import HTML, display\n"
             "display(HTML(\"<p id='mark'>shown</p><script>document.title = 'ran'; fetch('/api/whoami')</script>\"))", []),
)

#: A MATLAB-style project run with GNU Octave: app.m calls a function of its own file beside it, lists
#: input/, and tries to write beside output/ (the kernel refuses: fopen answers -1).
OCTAVE_PROJECT = {
    "app.m": ("squares = square_of(1:4);\n"
              "names = dir('input');\n"
              "names = sort({names(~[names.isdir]).name});\n"
              "outside = fopen('../escaped.txt', 'w');\n"
              "fid = fopen(fullfile('output', 'result.txt'), 'w');\n"
              "fprintf(fid, 'squares %s\\n', num2str(squares));\n"
              "fprintf(fid, 'input %s\\n', strjoin(names, ','));\n"
              "fprintf(fid, 'outside %d\\n', outside);\n"
              "fclose(fid);\n"
              "printf('octave %s ran\\n', OCTAVE_VERSION);\n"),
    "square_of.m": "function y = square_of(x)\n  y = x .^ 2;\nend\n",
    "requirements.txt": "numpy\n",  # a NIAS project may carry one: not used for Octave, and said so
}


def octave_result(*inputs: str) -> str:
    """What OCTAVE_PROJECT writes in output/result.txt, given the names in input/."""
    return f"squares 1   4   9  16\ninput {','.join(inputs)}\noutside -1\n"


def require_octave() -> None:
    """GNU Octave on this machine, where the local, GridEngine and Slurm jobs run."""
    import shutil

    from conftest import real_component
    real_component("GNU Octave", shutil.which("octave-cli") is not None, "scripts/install-system.sh octave")

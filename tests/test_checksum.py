"""common.checksum.code_digest: cache keys follow the code, not its prose."""

import textwrap

from common.checksum import code_digest

SOURCE = '''
"""Module docstring."""

X = 3  # a comment


class Pen:
    """A class docstring."""

    def width(self, k):
        """A function docstring."""
        return X * k


def only_docstring():
    """Nothing else."""
'''


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_comments_and_docstrings_do_not_change_the_digest(tmp_path):
    base = code_digest(write(tmp_path, "a.py", SOURCE))
    prose = (SOURCE.replace("Module docstring.", "Another text.").replace("# a comment", "# reworded")
             .replace("A function docstring.", "Says why, now.").replace('        """A class docstring."""\n', ""))
    assert code_digest(write(tmp_path, "b.py", prose)) == base


def test_any_code_change_changes_the_digest(tmp_path):
    base = code_digest(write(tmp_path, "a.py", SOURCE))
    for old, new in (("X = 3", "X = 4"), ("X * k", "k * X"), ('"""Nothing else."""', '"""Nothing else."""\n    return 1')):
        assert code_digest(write(tmp_path, "b.py", SOURCE.replace(old, new))) != base, (old, new)

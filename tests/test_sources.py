import zipfile
from pathlib import Path

import pytest

from encoderzoo.errors import DataError
from encoderzoo.recipes import get_recipe
from encoderzoo.sources import download, resolve_data


def test_packaged_data_for_the_demo(tmp_path: Path) -> None:
    path = resolve_data(get_recipe("demo"), None, tmp_path)
    assert path.name == "sst2-dev.tsv" and path.is_file()


def test_override_wins(tmp_path: Path) -> None:
    assert resolve_data(get_recipe("demo"), "~/x.tsv", tmp_path) == Path("~/x.tsv").expanduser()


def test_download_extracts_the_member_once(tmp_path: Path) -> None:
    archive = tmp_path / "SST-2.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("SST-2/dev.tsv", "sentence\tlabel\ngood\t1\n")
    cache = tmp_path / "cache"
    url = archive.as_uri()
    path = download(url, "SST-2/dev.tsv", cache, hint="dev.tsv")
    assert path.read_text() == "sentence\tlabel\ngood\t1\n"
    archive.unlink()  # the second call is served from the cache
    assert download(url, "SST-2/dev.tsv", cache, hint="dev.tsv") == path


def test_download_failure_says_what_to_pass(tmp_path: Path) -> None:
    url = (tmp_path / "missing.zip").as_uri()
    with pytest.raises(DataError, match=r"cannot download .* pass --data PATH to the GLUE"):
        download(url, "SST-2/dev.tsv", tmp_path / "cache", hint="the GLUE SST-2 dev.tsv")


def test_archive_without_the_member(tmp_path: Path) -> None:
    archive = tmp_path / "SST-2.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("other.tsv", "")
    with pytest.raises(DataError, match=r"no 'SST-2/dev\.tsv' in the downloaded archive"):
        download(archive.as_uri(), "SST-2/dev.tsv", tmp_path / "cache", hint="dev.tsv")

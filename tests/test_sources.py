import zipfile
from pathlib import Path

import pytest

from encoderzoo.errors import ConfigError, DataError
from encoderzoo.recipes import get_recipe
from encoderzoo.sources import download, resolve_data


def test_packaged_data_for_the_demo(tmp_path: Path) -> None:
    files = resolve_data(get_recipe("demo"), (), tmp_path)
    assert list(files) == ["dev"] and files["dev"].name == "sst2-dev.tsv" and files["dev"].is_file()


def test_override_wins(tmp_path: Path) -> None:
    assert resolve_data(get_recipe("demo"), ("~/x.tsv",), tmp_path) == {"dev": Path("~/x.tsv").expanduser()}
    assert resolve_data(get_recipe("demo"), ("dev=y.tsv",), tmp_path) == {"dev": Path("y.tsv")}


def test_splits_from_a_folder_or_one_by_one(tmp_path: Path) -> None:
    mnli = get_recipe("deberta-v3-base-mnli")
    for split in ("matched", "mismatched"):
        (tmp_path / f"dev_{split}.tsv").write_text("x")
    assert resolve_data(mnli, (str(tmp_path),), tmp_path / "cache") == {
        "matched": tmp_path / "dev_matched.tsv", "mismatched": tmp_path / "dev_mismatched.tsv"}
    given = ("matched=a.tsv", "mismatched=b.tsv")
    assert resolve_data(mnli, given, tmp_path) == {"matched": Path("a.tsv"), "mismatched": Path("b.tsv")}


def test_one_file_for_two_splits_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"reads 2 files .* pass --data SPLIT=PATH for each"):
        resolve_data(get_recipe("deberta-v3-base-mnli"), (str(tmp_path / "dev.tsv"),), tmp_path)
    (tmp_path / "dev_matched.tsv").write_text("x")
    with pytest.raises(DataError, match=r"no dev_mismatched\.tsv in this folder"):
        resolve_data(get_recipe("deberta-v3-base-mnli"), (str(tmp_path),), tmp_path)


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

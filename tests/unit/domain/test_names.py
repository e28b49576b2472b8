"""R-NAME: normalised storage form and comparison of personal names."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licence_service.domain.names import normalise_name, same_name


def NFD(s: str) -> str:
    return unicodedata.normalize("NFD", s)


VIETNAMESE_LETTERS = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxy"
    "áàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
)
names = st.text(
    alphabet=VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + " \t", max_size=40
)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        pytest.param("nguyễn văn an", "NGUYỄN VĂN AN", id="R-NAME-lower-case"),
        pytest.param(NFD("nguyễn văn an"), "NGUYỄN VĂN AN", id="R-NAME-NFD"),
        pytest.param("  nguyễn  \tvăn\n an ", "NGUYỄN VĂN AN", id="R-NAME-whitespace"),
        pytest.param("đỗ thanh quân", "ĐỖ THANH QUÂN", id="R-NAME-d-stroke"),
        pytest.param("NGUYỄN VĂN AN", "NGUYỄN VĂN AN", id="R-NAME-already-normal"),
    ],
)
def test_normalise_name_is_upper_case_nfc_single_spaced(raw, stored):
    result = normalise_name(raw)
    assert result == stored
    assert unicodedata.is_normalized("NFC", result)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(
            "nguyễn  văn an", "NGUYỄN VĂN AN", True, id="R-NAME-case-and-spaces"
        ),
        pytest.param(
            NFD("NGUYỄN VĂN AN"), "NGUYỄN VĂN AN", True, id="R-NAME-NFD-equals-NFC"
        ),
        pytest.param(
            NFD("ễ"), "\u1ec5", True, id="R-NAME-decomposed-e-circumflex-tilde"
        ),
        pytest.param(" lê  thu yến ", "LÊ THU YẾN", True, id="R-NAME-trim"),
        pytest.param(
            "NGUYEN VAN AN", "NGUYỄN VĂN AN", False, id="R-NAME-diacritics-matter"
        ),
        pytest.param(
            "NGUYỄN VĂNAN", "NGUYỄN VĂN AN", False, id="R-NAME-word-break-matters"
        ),
        pytest.param(
            "NGUYỄN VĂN ẤN", "NGUYỄN VĂN AN", False, id="R-NAME-different-tone"
        ),
    ],
)
def test_same_name_compares_after_nfc_casefold_and_collapse(a, b, expected):
    assert same_name(a, b) is expected
    assert same_name(b, a) is expected


@given(names)
def test_normalised_name_is_idempotent_and_same_as_input_R_NAME(name):
    stored = normalise_name(name)
    assert normalise_name(stored) == stored
    assert same_name(stored, name)
    assert same_name(NFD(name), name)

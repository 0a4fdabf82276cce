"""ETag / If-Match rules (pure logic)."""

import pytest

from shared.http import check_if_match, etag_of
from shared.problems import PreconditionFailed, PreconditionRequired


def test_missing_if_match_is_428_with_current_etag() -> None:
    with pytest.raises(PreconditionRequired) as err:
        check_if_match(None, 3)
    assert err.value.extensions["current_etag"] == '"3"'


@pytest.mark.parametrize("header", ['"2"', '"4", "5"', 'W/"1"'])
def test_stale_if_match_is_412(header: str) -> None:
    with pytest.raises(PreconditionFailed):
        check_if_match(header, 3)


@pytest.mark.parametrize("header", ['"3"', 'W/"3"', '"1", "3"', "*"])
def test_matching_if_match_passes(header: str) -> None:
    check_if_match(header, 3)
    assert etag_of(3) == '"3"'

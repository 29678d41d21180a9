"""The table columns the pages share."""

from ui.columns import share_column


def test_a_share_shows_one_decimal_in_every_row():
    # Streamlit's "percent" format drops trailing zeros ("38%" beside "89.9%", "37.98%")
    # unless the column has a step, which fixes the decimals shown.
    config = share_column("Confidence")
    assert config["type_config"]["format"] == "percent"
    assert config["type_config"]["step"] == 0.001

"""The search keys patients are stored and looked up by."""

from practice_registry_svc.patients.search_keys import name_key, postcode_key


def test_name_keys_ignore_case_accents_spacing_and_punctuation():
    assert name_key("O'Brien-Smith") == name_key("obrien smith") == name_key("O’BRIEN SMITH") == "obriensmith"
    assert name_key("Núñez García") == name_key("nunez-garcia") == "nunezgarcia"
    assert name_key("Zoë") == name_key("ZOE") == "zoe"
    assert name_key("Søren Łukasz") == "sorenlukasz"
    assert name_key("Straße") == name_key("STRASSE") == "strasse"
    assert name_key("St. John") == name_key("St John") == "stjohn"
    assert name_key("Ní Bhriain") == "nibhriain"
    assert name_key("'- ") == ""


def test_postcode_keys_are_upper_case_without_spaces():
    assert postcode_key(" sw1a  1aa ") == postcode_key("SW1A1AA") == "SW1A1AA"

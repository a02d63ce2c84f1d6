"""The message catalogues (locale/*/LC_MESSAGES/django.po, docs/languages.md).

Spanish is complete: every message the code and templates mark has a Spanish text, none is fuzzy (a guess
msgmerge made that nobody checked). In every language a translation keeps its message's placeholders, so
formatting it can never fail or drop a value. The extraction test runs makemessages on a copy of the
sources, so a message someone marks without updating the catalogues fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from tests.languages.po import Entry, placeholders, read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale"
COMPLETE = ["es"]
LANGUAGES = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
SOURCES = ["backend", "dispatch", "governance", "mobile_api"]
BRACE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def catalogue(language: str) -> list[Entry]:
    return read_po(LOCALE / language / "LC_MESSAGES" / "django.po")


def messages(language: str) -> list[Entry]:
    return [entry for entry in catalogue(language) if not entry.is_header]


def _shape(text: str) -> tuple[set[str], int, set[str]]:
    """A text's placeholders: the %-names it uses, how many unnamed %-directives (`%s`) it has, and the
    str.format names (`{link}`) some notification texts use."""
    found = placeholders(text)
    named = {p for p in found if p.startswith("%(")}
    return named, len(found) - len(named), set(BRACE.findall(text))


def test_every_language_offered_has_a_catalogue_with_a_usable_header():
    assert set(LANGUAGES) == {"es", "bn", "fr", "ht"}
    for language in LANGUAGES:
        header = next(entry for entry in catalogue(language) if entry.is_header)
        assert not header.fuzzy, f"{language}: the header is fuzzy, so msgfmt would drop it"
        fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)
        assert fields["Language"] == language
        assert fields["Content-Type"] == "text/plain; charset=UTF-8"
        assert re.fullmatch(r"nplurals=\d+; plural=.+;", fields["Plural-Forms"]), fields["Plural-Forms"]


@pytest.mark.parametrize("language", COMPLETE)
def test_the_complete_catalogues_translate_every_message_and_guess_none(language):
    entries = messages(language)
    assert len(entries) > 500  # the code's messages, not an empty file
    untranslated = [entry.where() for entry in entries if not entry.translated]
    fuzzy = [entry.where() for entry in entries if entry.fuzzy]
    assert not untranslated, f"{len(untranslated)} untranslated in {language}:\n" + "\n".join(untranslated)
    assert not fuzzy, f"{len(fuzzy)} fuzzy in {language}:\n" + "\n".join(fuzzy)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_translation_keeps_its_messages_placeholders(language):
    """A singular translation uses exactly its message's placeholders (a missing one drops a value, an
    extra one fails to format); a plural form may leave out the number it is chosen by (Spanish "un
    viaje"), but uses no name the message does not give."""
    problems = []
    for entry in messages(language):
        if not entry.translated:
            continue  # untranslated: gettext shows the English, which is well-formed
        if entry.msgid_plural is None:
            expected = _shape(entry.msgid)
            if _shape(entry.msgstr[0]) != expected:
                problems.append(f"{entry.where()}: {_shape(entry.msgstr[0])} instead of {expected}")
            continue
        names = _shape(entry.msgid)[0] | _shape(entry.msgid_plural)[0]
        braces = _shape(entry.msgid)[2] | _shape(entry.msgid_plural)[2]
        for index, text in sorted(entry.msgstr.items()):
            used, unnamed, used_braces = _shape(text)
            if not used <= names or unnamed > _shape(entry.msgid_plural)[1] or not used_braces <= braces:
                problems.append(f"{entry.where()} [{index}]: {used} (+{unnamed} unnamed) beyond {names}")
    assert not problems, f"{language}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_the_one_django_reads(language):
    with translation.override(language):
        assert translation.get_language() == language
        translated = {
            entry.msgid: entry.msgstr[0]
            for entry in messages(language)
            if entry.translated and not entry.fuzzy and entry.msgid_plural is None and entry.msgctxt is None
        }
        assert translated, f"{language} translates nothing yet"
        for msgid, msgstr in list(translated.items())[:50]:
            assert translation.gettext(msgid) == msgstr


def test_the_catalogues_hold_every_message_the_sources_mark(tmp_path):
    """makemessages on a copy of the sources (and of the catalogues): nothing new may appear, and in Spanish
    everything it finds is translated."""
    for name in SOURCES:
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "migrations")
        )
    shutil.copytree(LOCALE, tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    command = [sys.executable, "manage.py", "makemessages", *[f"-l{code}" for code in LANGUAGES]]
    command += ["--no-obsolete", "--ignore=node_modules", "--add-location=file", "-v0"]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    for language in LANGUAGES:
        known = {(entry.msgctxt, entry.msgid) for entry in messages(language)}
        fresh = [entry for entry in read_po(tmp_path / "locale" / language / "LC_MESSAGES" / "django.po")]
        missing = [
            entry.where()
            for entry in fresh
            if not entry.is_header and (entry.msgctxt, entry.msgid) not in known
        ]
        assert not missing, (
            f"{len(missing)} messages in the code are not in locale/{language} (run makemessages, "
            "docs/languages.md):\n" + "\n".join(missing)
        )
        if language in COMPLETE:
            untranslated = [entry.where() for entry in fresh if not entry.translated]
            assert not untranslated, f"untranslated in {language}:\n" + "\n".join(untranslated)

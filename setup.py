"""Build step of the distribution (everything else is in pyproject.toml): the gettext catalogs of the
admin and of the bundled plugins are compiled into the wheel (``.po`` -> ``.mo``, with Babel), so an installed hookshop
ships ready catalogs. An editable install (development) skips this; the plugin then compiles them into
the instance folder on first load (plugins/notify_email/i18n.py)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCatalogs(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in [*Path("plugins").glob("*/translations/*/LC_MESSAGES/*.po"),
                   *Path("engine/admin").glob("translations/*/LC_MESSAGES/*.po")]:
            mo = Path(self.build_lib) / po.with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as source, mo.open("wb") as target:
                write_mo(target, read_po(source, locale=po.parts[-3], domain=po.stem))


setup(cmdclass={"build_py": BuildPyWithCatalogs})

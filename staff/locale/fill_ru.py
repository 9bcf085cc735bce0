"""Fill the Russian catalogue of the staff workspace: `python staff/locale/fill_ru.py` after
`cd staff && ../manage.py makemessages -l ru`, then `msgfmt` (see below). Translations live here, by msgid."""
import re
import subprocess
from pathlib import Path

PO = Path(__file__).parent / "ru" / "LC_MESSAGES" / "django.po"

RU = {
    "Submitted": "Подано", "Deadline": "Срок", "Overdue": "Просрочено",
    "State": "Статус", "Category": "Категория", "District": "Район", "Department": "Подразделение",
    "Address": "Адрес", "Description": "Описание", "Answered": "Дан ответ", "Link": "Ссылка", "yes": "да",
    "Deadline, soonest first": "Срок: сначала ближайшие", "Deadline, latest first": "Срок: сначала дальние",
    "Newest first": "Сначала новые", "To work on": "В работу", "All": "Все", "Overdue only": "Только просроченные",
    "Sort": "Порядок", "Public answer": "Публичный ответ", "Photo (JPEG, PNG or WebP)": "Фото (JPEG, PNG или WebP)",
    "To department": "В подразделение", "Let the routing decide again": "Пусть маршрутизация решит заново",
    "Reason": "Причина",
    "Staff workspace": "Рабочее место сотрудника", "Our City": "Наш город", "Tickets": "Обращения",
    "Import datasets": "Импорт данных", "city dispatcher: all departments": "городской диспетчер: все подразделения",
    "Log out": "Выйти", "Log in": "Войти", "Log in to the staff workspace": "Вход в рабочее место сотрудника",
    "Login": "Логин", "Password": "Пароль",
    "For the staff of city departments and organisations. Residents follow their complaints by tracking code on "
    "the map.": "Для сотрудников городских ведомств и организаций. Жители следят за своими обращениями по коду "
                "на карте.",
    "To the map": "На карту", "Ticket": "Обращение",
    "overdue": "просрочено", "duplicate of": "дубликат обращения", "Location": "Место",
    "Contact (not public)": "Контакты (не публикуются)", "Source": "Источник",
    "Photo of the problem": "Фото проблемы", "Why it is here": "Почему обращение у вас",
    "Other candidates the routing considered": "Другие кандидаты, которых рассматривала маршрутизация",
    "Facility": "Объект", "Owner": "Владелец", "Distance, m": "Расстояние, м", "Answers": "Ответы",
    "Photo of the answer": "Фото к ответу", "No answer yet.": "Ответа пока нет.", "History": "История",
    "When": "Когда", "What": "Что", "Who": "Кто", "not public": "не публикуется", "Map of the place": "Карта места",
    "Actions": "Действия", "No actions are possible in this state.": "В этом статусе действий нет.",
    "Take into work": "Взять в работу", "Answer publicly": "Ответить публично",
    "Publish the answer": "Опубликовать ответ", "Hand on to another department": "Передать в другое подразделение",
    "Hand on": "Передать", "Mark as a duplicate": "Отметить как дубликат",
    "All departments' tickets": "Обращения всех подразделений",
    "My department's tickets": "Обращения моего подразделения",
    "%(n)s ticket": ["%(n)s обращение", "%(n)s обращения", "%(n)s обращений", "%(n)s обращения"],
    "Export to CSV": "Выгрузить в CSV", "You keep the registry:": "Вы ведёте реестр:",
    "upload a dataset (dry run, then commit)": "загрузить набор данных (пробный прогон, затем запись)",
    "Show": "Показать", "No tickets match.": "Подходящих обращений нет.", "Pages": "Страницы",
    "Previous": "Назад", "Page %(n)s of %(total)s": "Страница %(n)s из %(total)s", "Next": "Вперёд",
    "The ticket is in work.": "Обращение взято в работу.", "The answer is published.": "Ответ опубликован.",
    "The ticket is handed on.": "Обращение передано.",
    "The ticket is marked as a duplicate.": "Обращение отмечено как дубликат.",
    "Number": "Номер", "Number of the original complaint": "Номер исходного обращения",
    "No complaint with this number.": "Обращения с таким номером нет.",
    "Ticket № %(number)s": "Обращение № %(number)s",
}


HEADER = "\n".join([
    "# Russian translation of the staff workspace (staff/). Sources are English; to update:",
    "# cd staff && ../.venv/bin/python ../manage.py makemessages -l ru && cd .. && "
    ".venv/bin/python staff/locale/fill_ru.py",
    'msgid ""',
    'msgstr ""',
    '"Project-Id-Version: geo_ourcity\\n"',
    '"PO-Revision-Date: 2026-11-23 09:00+0300\\n"',
    '"Last-Translator: geo_ourcity\\n"',
    '"Language-Team: Russian\\n"',
    '"Language: ru\\n"',
    '"MIME-Version: 1.0\\n"',
    '"Content-Type: text/plain; charset=UTF-8\\n"',
    '"Content-Transfer-Encoding: 8bit\\n"',
    '"Plural-Forms: nplurals=4; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && "',
    '"n%10<=4 && (n%100<12 || n%100>14) ? 1 : n%10==0 || (n%10>=5 && n%10<=9) || "',
    '"(n%100>=11 && n%100<=14)? 2 : 3);\\n"',
])


def unquote(lines):
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', lines)).replace('\\"', '"').replace("\\n", "\n")


def quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def fill(text):
    missing = []
    out = []
    for entry in text.split("\n\n"):
        found = re.search(r'^msgid ((?:".*"\n?)+)', entry, re.M)
        msgid = unquote(found.group(1)) if found else ""
        if not msgid:
            out.append(HEADER if "Plural-Forms" in entry else entry)
            continue
        value = RU.get(msgid)
        if value is None:
            missing.append(msgid)
        elif isinstance(value, list):
            entry = re.sub(r'^msgstr\[0\][\s\S]*', "\n".join(f"msgstr[{i}] {quote(v)}" for i, v in enumerate(value)),
                           entry, flags=re.M)
        else:
            entry = re.sub(r'^msgstr (?:".*"\n?)+', f"msgstr {quote(value)}", entry, flags=re.M)
        out.append(entry)
    return "\n\n".join(out), missing


if __name__ == "__main__":
    filled, missing = fill(PO.read_text(encoding="utf-8"))
    PO.write_text(filled if filled.endswith("\n") else filled + "\n", encoding="utf-8")
    subprocess.run(["msgfmt", "--check", "-o", str(PO.with_suffix(".mo")), str(PO)], check=True)
    if missing:
        raise SystemExit(f"no Russian for: {missing}")

"""The vocabulary's words by their beginning: facilities.search completes the word being typed into the whole stems
that start with it (a byte-order range, `~>=~` and `~<~`, which only a text_pattern_ops index serves). Words only,
as the trigram index (0014): a number is never completed."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("facilities", "0014_searchterm_words_only_trigram_index")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX searchterm_word_prefix ON facilities_searchterm (term text_pattern_ops) WHERE term !~ '[0-9]'",
            "DROP INDEX IF EXISTS searchterm_word_prefix"),
    ]

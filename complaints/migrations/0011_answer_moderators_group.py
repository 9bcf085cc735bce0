"""The group "Answer moderators" (complaints.selectors.MODERATORS_GROUP) with the permission to moderate answers
(complaints.moderate_answer): staff put the city's moderators in it (issue 10)."""
from django.db import migrations


def create_group(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="complaints", model="answer")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="moderate_answer",
        defaults={"name": "Can publish or return departments' answers (moderation)"})
    group, _ = Group.objects.get_or_create(name="Answer moderators")
    group.permissions.add(permission)


class Migration(migrations.Migration):

    dependencies = [
        ("complaints", "0010_answer_cycle"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]

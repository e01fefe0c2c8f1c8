from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('relay', '0009_rate_cards')]

    initial = False

    operations = [
        ops.AddField(
            model_name='UsageRecord',
            name='attempts',
            field=fields.TextField(null=True, db_default=None),
        ),
    ]

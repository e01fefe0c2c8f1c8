from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('relay', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='QuirkOverride',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rule', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('enabled', fields.BooleanField(default=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'quirk_override', 'app': 'relay', 'pk_attr': 'id', 'table_description': 'A quirk rule edited by an admin: the same shape as a rule in app/data/quirks.yaml.'},
            bases=['Model'],
        ),
    ]

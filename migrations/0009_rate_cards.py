from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('relay', '0008_drop_redundant_usage_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='UsageRates',
            fields=[
                ('id', fields.BigIntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('rates', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'usage_rates', 'app': 'relay', 'pk_attr': 'id', 'table_description': 'A set of rates usage rows were priced with, stored once (app/stores/rate_cards.py).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='rates_id',
            field=fields.BigIntField(null=True),
        ),
    ]

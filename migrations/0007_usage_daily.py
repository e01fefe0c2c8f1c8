from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('relay', '0006_api_keys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='UsageDaily',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('day', fields.CharField(max_length=10)),
                ('tag', fields.CharField(default='', max_length=64)),
                ('provider', fields.CharField(default='', max_length=64)),
                ('resolved_model', fields.CharField(default='', max_length=255)),
                ('client', fields.CharField(default='', max_length=64)),
                ('outcome', fields.CharField(max_length=32)),
                ('status', fields.IntField()),
                ('requests', fields.BigIntField(default=0)),
                ('ok', fields.BigIntField(default=0)),
                ('unpriced', fields.BigIntField(default=0)),
                ('priced', fields.BigIntField(default=0)),
                ('input_tokens', fields.BigIntField(default=0)),
                ('output_tokens', fields.BigIntField(default=0)),
                ('reasoning_tokens', fields.BigIntField(default=0)),
                ('cached_input_tokens', fields.BigIntField(default=0)),
                ('cache_read_tokens', fields.BigIntField(default=0)),
                ('cache_write_tokens', fields.BigIntField(default=0)),
                ('cost_nanousd', fields.BigIntField(default=0)),
            ],
            options={'table': 'usage_daily', 'app': 'relay', 'unique_together': (('day', 'tag', 'provider', 'resolved_model', 'client', 'outcome', 'status'),), 'pk_attr': 'id', 'table_description': 'Daily totals of usage rows the retention job deleted, so long-range charts and totals'},
            bases=['Model'],
        ),
    ]

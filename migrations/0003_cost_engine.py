from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('relay', '0002_quirk_override')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PriceOverride',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('provider', fields.CharField(max_length=64)),
                ('model', fields.CharField(max_length=255)),
                ('input_per_mtok', fields.DecimalField(null=True, max_digits=18, decimal_places=9)),
                ('output_per_mtok', fields.DecimalField(null=True, max_digits=18, decimal_places=9)),
                ('cache_read_per_mtok', fields.DecimalField(null=True, max_digits=18, decimal_places=9)),
                ('cache_write_per_mtok', fields.DecimalField(null=True, max_digits=18, decimal_places=9)),
                ('cache_read_multiplier', fields.DecimalField(null=True, max_digits=12, decimal_places=6)),
                ('cache_write_multiplier', fields.DecimalField(null=True, max_digits=12, decimal_places=6)),
                ('request_fee_usd', fields.DecimalField(null=True, max_digits=18, decimal_places=9)),
                ('tier_threshold', fields.BigIntField(null=True)),
                ('enabled', fields.BooleanField(default=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'price_override', 'app': 'relay', 'unique_together': (('provider', 'model'),), 'pk_attr': 'id', 'table_description': 'Prices set by an admin for one model, kept apart from the catalog so no sync overwrites them.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PricingSync',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('source', fields.CharField(max_length=500)),
                ('status', fields.CharField(max_length=16)),
                ('error', fields.TextField(null=True, unique=False)),
                ('added', fields.IntField(default=0)),
                ('removed', fields.IntField(default=0)),
                ('changed', fields.IntField(default=0)),
                ('changes', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('snapshot', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'pricing_sync', 'app': 'relay', 'pk_attr': 'id', 'table_description': 'One pricing sync: when, from where, what changed, and the snapshot it produced if it worked.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cache_write_1h_tokens',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='computed_cost_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_cache_read_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_cache_write_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_cached_input_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_input_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_output_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_request_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_search_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='cost_source',
            field=fields.CharField(default='unpriced', db_default='unpriced', max_length=16),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='pricing_tier',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='provider_cost_nanousd',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='rates',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='service_tier',
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='web_search_requests',
            field=fields.IntField(default=0, db_default=0),
        ),
    ]

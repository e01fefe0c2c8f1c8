from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='ModelAlias',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=128)),
                ('target', fields.CharField(max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'model_alias', 'app': 'relay', 'pk_attr': 'name'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UsageRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('request_id', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('endpoint', fields.CharField(max_length=64)),
                ('dialect', fields.CharField(max_length=16)),
                ('client', fields.CharField(default='', max_length=64)),
                ('requested_model', fields.CharField(default='', max_length=255)),
                ('resolved_model', fields.CharField(null=True, max_length=255)),
                ('provider', fields.CharField(null=True, db_index=True, max_length=64)),
                ('route', fields.CharField(default='direct', max_length=16)),
                ('input_tokens', fields.BigIntField(default=0)),
                ('output_tokens', fields.BigIntField(default=0)),
                ('reasoning_tokens', fields.BigIntField(default=0)),
                ('cached_input_tokens', fields.BigIntField(default=0)),
                ('cache_read_tokens', fields.BigIntField(default=0)),
                ('cache_write_tokens', fields.BigIntField(default=0)),
                ('usage_reported', fields.BooleanField(default=False)),
                ('cost_nanousd', fields.BigIntField(null=True)),
                ('latency_ms', fields.IntField(null=True)),
                ('ttft_ms', fields.IntField(null=True)),
                ('streamed', fields.BooleanField(default=False)),
                ('status', fields.IntField(default=200)),
                ('outcome', fields.CharField(db_index=True, max_length=32)),
                ('error', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'usage_record', 'app': 'relay', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UsageTag',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('request_id', fields.CharField(db_index=True, max_length=64)),
                ('tag', fields.CharField(db_index=True, max_length=64)),
            ],
            options={'table': 'usage_tag', 'app': 'relay', 'unique_together': (('request_id', 'tag'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]

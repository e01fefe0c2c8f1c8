from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('relay', '0010_route_attempts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RouteRecord',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=128)),
                ('spec', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'relay_route', 'app': 'relay', 'pk_attr': 'name', 'table_description': 'A route added in the admin UI: its name and the rest of it as PROVIDERS_FILE writes it.'},
            bases=['Model'],
        ),
    ]

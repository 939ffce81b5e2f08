from plugwire.grpc.terraform import (
    Attribute,
    Context,
    Provider,
    RequiresReplace,
    Resource,
    Schema,
    UseStateForUnknown,
    cty,
    serve,
)


class Greeting(Resource):
    type_name = "hello_greeting"
    schema = Schema(
        attributes={
            "id": Attribute(cty.String, computed=True, plan_modifiers=[UseStateForUnknown()]),
            "name": Attribute(cty.String, required=True, plan_modifiers=[RequiresReplace()]),
            "size": Attribute(cty.Number, optional=True, default=1),
            "text": Attribute(cty.String, computed=True),
        }
    )

    async def create(self, plan: dict, ctx: Context) -> dict:
        return {**plan, "id": plan["name"], "text": f"hello, {plan['name']}"}

    async def update(self, prior: dict, plan: dict, ctx: Context) -> dict:
        return {**plan, "id": prior["id"], "text": f"hello, {plan['name']}"}


if __name__ == "__main__":
    serve(Provider("hello", resources=[Greeting()]))

terraform {
  required_providers {
    {{ cookiecutter.provider_name }} = {
      source = "{{ cookiecutter.namespace }}/{{ cookiecutter.provider_name }}"
    }
  }
}

provider "{{ cookiecutter.provider_name }}" {
  greeting = "{{ cookiecutter.default_greeting }}"
}

variable "name" {
  type    = string
  default = "world"
}

variable "greeting" {
  type     = string
  default  = null
  nullable = true
}

resource "{{ cookiecutter.provider_name }}_greeting" "this" {
  name     = var.name
  greeting = var.greeting # null: the provider's greeting
}

data "{{ cookiecutter.provider_name }}_message" "reader" {
  name     = "reader"
  greeting = "Welcome"
}

output "id" {
  value = {{ cookiecutter.provider_name }}_greeting.this.id
}

output "text" {
  value = {{ cookiecutter.provider_name }}_greeting.this.text
}

output "message" {
  value = data.{{ cookiecutter.provider_name }}_message.reader.text
}

output "shout" {
  value = provider::{{ cookiecutter.provider_name }}::shout({{ cookiecutter.provider_name }}_greeting.this.text)
}

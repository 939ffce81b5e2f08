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

variable "signature" {
  type      = string
  default   = null
  nullable  = true
  ephemeral = true # it only feeds a write-only attribute: never stored anywhere
}

variable "greeting" {
  type     = string
  default  = null
  nullable = true
}

resource "{{ cookiecutter.provider_name }}_greeting" "this" {
  name     = var.name
  greeting = var.greeting # null: the provider's greeting

  signature_wo = var.signature # write-only: reaches the provider, never the state
}

# Runs only when invoked: terraform apply -invoke=action.{{ cookiecutter.provider_name }}_announce.hello
action "{{ cookiecutter.provider_name }}_announce" "hello" {
  config {
    name  = var.name
    times = 2
  }
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

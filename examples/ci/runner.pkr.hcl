# A VM runner image: imagegate gates it as the last provisioner and starts the
# rollout once the image is published.
variable "version" { type = string }

source "amazon-ebs" "runner" {
  ami_name      = "runner-ubuntu-22.04-${var.version}"
  instance_type = "c6i.large"
  region        = "eu-west-1"
  source_ami_filter {
    filters = {
      name = "ubuntu/images/*ubuntu-jammy-22.04-amd64-server-*"
    }
    owners      = ["099720108477"]
    most_recent = true
  }
  ssh_username = "ubuntu"
}

build {
  sources = ["source.amazon-ebs.runner"]

  provisioner "shell" {
    script = "setup.sh"
  }

  provisioner "file" {
    sources     = ["previous.json", "changes.yaml"]
    destination = "/tmp/"
  }

  provisioner "shell" {
    environment_vars = [
      "IMAGEGATE_SERVER=${env("IMAGEGATE_SERVER")}",
      "IMAGEGATE_TOKEN=${env("IMAGEGATE_TOKEN")}",
      "LABEL=ubuntu-22.04",
      "VERSION=${var.version}",
    ]
    script = "packer-imagegate.sh"
  }

  post-processor "shell-local" {
    inline = ["imagegate rollout start ubuntu-22.04 ${var.version} --auto-rollback"]
  }
}

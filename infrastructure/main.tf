# One Lightsail nano for market-streamer: the instance (Docker installed at first boot by
# bootstrap.sh, the same script `./deploy.sh --bootstrap` runs), a static IP that survives
# stop/start, and a firewall that opens SSH only. The service's health port stays on the
# box's loopback; reach it through an SSH tunnel.

locals {
  availability_zone = var.availability_zone != "" ? var.availability_zone : "${var.region}a"

  # Lightsail takes the launch script as one line: the script travels base64-encoded and is
  # decoded and run as root at first boot (log: /var/log/cloud-init-output.log).
  user_data = join(" ", [
    "echo ${base64encode(file("${path.module}/bootstrap.sh"))} | base64 -d > /root/market-streamer-bootstrap.sh",
    "&& SWAP_SIZE_MB=${var.swap_size_mb} bash /root/market-streamer-bootstrap.sh",
  ])
}

resource "aws_lightsail_key_pair" "deploy" {
  name       = "${var.name}-deploy"
  public_key = file(pathexpand(var.ssh_public_key_path))
  tags       = var.tags
}

resource "aws_lightsail_instance" "box" {
  name              = var.name
  availability_zone = local.availability_zone
  blueprint_id      = var.blueprint_id
  bundle_id         = var.bundle_id
  key_pair_name     = aws_lightsail_key_pair.deploy.name
  ip_address_type   = "dualstack"
  user_data         = local.user_data
  tags              = var.tags
}

resource "aws_lightsail_static_ip" "box" {
  name = "${var.name}-ip"
}

resource "aws_lightsail_static_ip_attachment" "box" {
  static_ip_name = aws_lightsail_static_ip.box.name
  instance_name  = aws_lightsail_instance.box.name
}

# Replaces Lightsail's default rules (22 and 80 open to all): only SSH, from the given ranges.
resource "aws_lightsail_instance_public_ports" "ssh_only" {
  instance_name = aws_lightsail_instance.box.name

  port_info {
    protocol   = "tcp"
    from_port  = 22
    to_port    = 22
    cidrs      = var.ssh_allowed_cidrs
    ipv6_cidrs = var.ssh_allowed_ipv6_cidrs
  }
}

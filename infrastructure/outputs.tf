output "static_ip" {
  description = "The box's static public IPv4 address."
  value       = aws_lightsail_static_ip.box.ip_address
}

output "ssh_host" {
  description = "HOST for deploy.sh: user@static-ip."
  value       = "${aws_lightsail_instance.box.username}@${aws_lightsail_static_ip.box.ip_address}"
}

output "next_steps" {
  description = "What to run next (the first boot installs Docker; give it a few minutes)."
  value       = <<-EOT
    SSH_KEY=${trimsuffix(pathexpand(var.ssh_public_key_path), ".pub")} ./deploy.sh --status ${aws_lightsail_instance.box.username}@${aws_lightsail_static_ip.box.ip_address}
    SSH_KEY=${trimsuffix(pathexpand(var.ssh_public_key_path), ".pub")} ./deploy.sh ${aws_lightsail_instance.box.username}@${aws_lightsail_static_ip.box.ip_address}
  EOT
}

module kubelab.dev/demo-web

go 1.22

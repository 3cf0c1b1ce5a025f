#!/bin/sh
echo "greet: building $1"

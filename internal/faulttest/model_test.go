package faulttest

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestRegisterModel checks the checker: a stale read and a lost CAS are
// caught, while an unknown-outcome write may take effect or not.
func TestRegisterModel(t *testing.T) {
	op := func(c int, in kvInput, call int64, out kvOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"stale read", []porcupine.Operation{
			op(0, kvInput{Kind: opWrite, Key: 1, Value: 5}, 0, kvOutput{}, 10),
			op(1, kvInput{Kind: opRead, Key: 1}, 20, kvOutput{Value: 0}, 30),
		}, porcupine.Illegal},
		{"cas applied against a changed value", []porcupine.Operation{
			op(0, kvInput{Kind: opWrite, Key: 1, Value: 5}, 0, kvOutput{}, 10),
			op(1, kvInput{Kind: opCAS, Key: 1, Expect: 0, Value: 6}, 20, kvOutput{OK: true}, 30),
		}, porcupine.Illegal},
		{"unknown write seen", []porcupine.Operation{
			op(0, kvInput{Kind: opWrite, Key: 1, Value: 5}, 0, kvOutput{Unknown: true}, infinity),
			op(1, kvInput{Kind: opRead, Key: 1}, 20, kvOutput{Value: 5}, 30),
		}, porcupine.Ok},
		{"unknown write never seen", []porcupine.Operation{
			op(0, kvInput{Kind: opWrite, Key: 1, Value: 5}, 0, kvOutput{Unknown: true}, infinity),
			op(1, kvInput{Kind: opRead, Key: 1}, 20, kvOutput{Value: 0}, 30),
		}, porcupine.Ok},
		{"keys are independent", []porcupine.Operation{
			op(0, kvInput{Kind: opWrite, Key: 1, Value: 5}, 0, kvOutput{}, 10),
			op(1, kvInput{Kind: opRead, Key: 2}, 20, kvOutput{Value: 0}, 30),
		}, porcupine.Ok},
	} {
		if got, _ := porcupine.CheckOperationsVerbose(registerModel, tc.ops, 0); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

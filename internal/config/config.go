// Package config is what the Config types of tickstream's packages share:
// zero fields take the package's DefaultConfig value, and a setting out of
// range is an error that names its field, so that the binary can name the
// flag. Each package keeps one copy of its defaults (its DefaultConfig)
// and one of its rules (its Validate); neither clamps.
package config

import (
	"fmt"
	"reflect"
)

// FillZero sets every zero field of *cfg to the same field of def, and
// does the same inside struct fields. Booleans are kept as given: false
// is a choice, not a missing setting.
func FillZero[T any](cfg *T, def T) {
	fill(reflect.ValueOf(cfg).Elem(), reflect.ValueOf(def))
}

func fill(v, def reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case !f.CanSet(), f.Kind() == reflect.Bool:
		case f.Kind() == reflect.Struct:
			fill(f, def.Field(i))
		case f.IsZero():
			f.Set(def.Field(i))
		}
	}
}

// FieldError is a setting out of range.
type FieldError struct {
	// Field is the setting's path in its Config, such as
	// "Fanout.HardLimit".
	Field string
	// Want says what the field accepts, such as "at least SoftLimit".
	Want string
	// Value is the value refused.
	Value any
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %v: want %s", e.Field, e.Value, e.Want)
}

// Check returns a FieldError for field unless ok.
func Check(ok bool, field string, value any, want string) error {
	if ok {
		return nil
	}
	return &FieldError{Field: field, Value: value, Want: want}
}

// Within prefixes the field of a FieldError with the name of the struct
// field that holds it, so that a Config validating a nested one names the
// whole path; other errors pass unchanged.
func Within(name string, err error) error {
	if fe, ok := err.(*FieldError); ok {
		return &FieldError{Field: name + "." + fe.Field, Want: fe.Want, Value: fe.Value}
	}
	return err
}

// First returns the first error that is not nil: a Validate lists its
// checks in the order of its fields and reports the first that fails.
func First(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
